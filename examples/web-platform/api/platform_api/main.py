"""The API: /healthz (database + migration state: current revision == head), /version and jobs."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Optional

from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from .config import APP_DIR, ConfigError, Settings, load_settings

SERVICE = "api"


def log_event(event: str, level: str = "INFO", **fields) -> None:
    record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
              "level": level, "event": event, "service": SERVICE}
    record.update(fields)
    print(json.dumps(record, default=str), flush=True)


class State:
    settings: Settings
    engine: Engine
    head: Optional[str]
    known: set


state = State()


def script_directory() -> ScriptDirectory:
    cfg = Config(str(APP_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(APP_DIR / "migrations"))
    return ScriptDirectory.from_config(cfg)


@asynccontextmanager
async def lifespan(app: FastAPI):
    try:
        settings = load_settings()
    except ConfigError as exc:
        log_event("config_error", level="ERROR", error=str(exc))
        raise SystemExit(2) from None
    state.settings = settings
    state.engine = create_engine(
        settings.database_url, pool_size=5, max_overflow=5, pool_timeout=5,
        pool_pre_ping=True, pool_recycle=300,
        connect_args={"connect_timeout": 3, "application_name": SERVICE,
                      "options": "-c statement_timeout=5000"})
    script = script_directory()
    state.head = script.get_current_head()
    state.known = {rev.revision for rev in script.walk_revisions()}
    log_event("startup", release=settings.release, profile=settings.profile.profile,
              features=settings.profile.features, alembic_head=state.head, pid=os.getpid())
    yield
    log_event("shutdown", release=settings.release)
    state.engine.dispose()


app = FastAPI(title="web-platform api", lifespan=lifespan, docs_url=None, redoc_url=None,
              openapi_url=None)


def migration_state() -> tuple[str, str, list]:
    """(database, migrations, revisions): migrations is `up-to-date` when the schema is
    at this image's head or ahead of it (a newer release's additive revision: a rollback
    runs older code on it), `pending` when it is behind."""
    try:
        with state.engine.connect() as conn:
            exists = conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar()
            revs = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()) \
                if exists else []
    except Exception:
        return "error", "unknown", []
    if revs == [state.head]:
        return "ok", "up-to-date", revs
    if revs and all(r not in state.known for r in revs):
        return "ok", "up-to-date", revs  # ahead: a newer release's revision
    return "ok", "pending", revs


@app.get("/healthz")
def healthz():
    release = state.settings.release
    if state.settings.profile.features.get("broken_health"):
        return JSONResponse({"status": "error", "service": SERVICE, "release": release,
                             "error": "this release is broken on purpose (test fixture)"},
                            status_code=500)
    database, migrations, revs = migration_state()
    ok = database == "ok" and migrations == "up-to-date"
    schema = "at-head" if revs == [state.head] else ("ahead" if ok else "behind")
    return JSONResponse({"status": "ok" if ok else "degraded", "service": SERVICE,
                         "release": release, "database": database, "migrations": migrations,
                         "schema": schema if database == "ok" else "unknown",
                         "revision": revs[0] if len(revs) == 1 else revs, "head": state.head},
                        status_code=200 if ok else 503)


@app.get("/version")
def version():
    return {"release": state.settings.release}


class JobIn(BaseModel):
    customer: str = Field(min_length=1, max_length=200)
    address: str = Field(min_length=1, max_length=500)
    price_cents: Optional[int] = Field(default=None, ge=0, le=10_000_000)


def columns() -> str:
    return "id, customer, address, created_at" + (
        ", price_cents" if state.settings.profile.features.get("price") else "")


def job_json(row) -> dict:
    out = dict(row._mapping)
    out["created_at"] = out["created_at"].isoformat()
    return out


def receipt(job_id: int) -> str:
    """A tamper-evident reference for the customer: HMAC of the job id with SECRET_KEY."""
    return hmac.new(state.settings.secret_key, f"job:{job_id}".encode(), hashlib.sha256).hexdigest()[:20]


@app.get("/jobs")
def list_jobs(limit: int = 50):
    with state.engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {columns()} FROM jobs ORDER BY id DESC LIMIT :n"),
                            {"n": max(1, min(limit, 200))}).all()
    return [job_json(r) for r in rows]


@app.post("/jobs", status_code=201)
def create_job(job: JobIn):
    price = state.settings.profile.features.get("price")
    if job.price_cents is not None and not price:
        raise HTTPException(422, "price_cents needs release v2")
    with state.engine.begin() as conn:
        if price:
            row = conn.execute(text(f"INSERT INTO jobs (customer, address, price_cents) VALUES "
                                    f"(:c, :a, :p) RETURNING {columns()}"),
                               {"c": job.customer, "a": job.address, "p": job.price_cents or 0}).one()
        else:
            row = conn.execute(text(f"INSERT INTO jobs (customer, address) VALUES (:c, :a) "
                                    f"RETURNING {columns()}"),
                               {"c": job.customer, "a": job.address}).one()
    out = job_json(row)
    out["receipt"] = receipt(out["id"])
    return out


@app.get("/jobs/{job_id}")
def get_job(job_id: int):
    with state.engine.connect() as conn:
        row = conn.execute(text(f"SELECT {columns()} FROM jobs WHERE id = :i"), {"i": job_id}).first()
    if row is None:
        raise HTTPException(404, "no such job")
    return job_json(row)
