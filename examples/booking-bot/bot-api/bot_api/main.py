"""The bot-api HTTP service: health, metrics, bookings (PostgreSQL) with a per-client
rate limit and a short listing cache (Redis)."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Literal, Optional

import redis
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from . import metrics
from .config import ConfigError, Settings, describe_url, load_settings
from .logs import log_event

SERVICE = "bot-api"


class State:
    settings: Settings
    engine: Engine
    redis: redis.Redis


state = State()


def booking_columns() -> str:
    cols = "id, client_id, slot, status, created_at, cancelled_at, cancelled_by, cancel_reason"
    return cols + (", note" if state.settings.profile.note else "")


def iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


def booking_json(row) -> dict:
    m = row._mapping
    out = {
        "id": m["id"],
        "client_id": m["client_id"],
        "slot": iso(m["slot"]),
        "status": m["status"],
        "created_at": iso(m["created_at"]),
        "cancelled_at": iso(m["cancelled_at"]),
        "cancelled_by": m["cancelled_by"],
        "cancel_reason": m["cancel_reason"],
    }
    if "note" in m:
        out["note"] = m["note"]
    return out


def check_database() -> bool:
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def check_redis() -> bool:
    try:
        return bool(state.redis.ping())
    except Exception:
        return False


@asynccontextmanager
async def lifespan(app: FastAPI):
    try:
        settings = load_settings()
    except ConfigError as exc:
        log_event("config_error", level="ERROR", service=SERVICE, error=str(exc))
        raise SystemExit(2) from None
    state.settings = settings
    state.engine = create_engine(
        settings.database_url,
        pool_size=5, max_overflow=5, pool_timeout=5, pool_pre_ping=True, pool_recycle=300,
        connect_args={"connect_timeout": 3, "application_name": SERVICE,
                      "options": "-c statement_timeout=5000"},
    )
    state.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=2,
                                       socket_connect_timeout=2, decode_responses=True)
    metrics.initialise()
    log_event(
        "startup", service=SERVICE, release=settings.release,
        image_release=settings.profile.release, profile=settings.profile.profile,
        features=settings.profile.features, database=describe_url(settings.database_url),
        telegram_token_set=True, telegram_updates_mode=settings.telegram_updates_mode,
        python=platform.python_version(), pid=os.getpid(),
    )
    yield
    log_event("shutdown", service=SERVICE, release=settings.release)
    state.engine.dispose()
    state.redis.close()


app = FastAPI(title="bot-api", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


@app.middleware("http")
async def observe(request: Request, call_next):
    start = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        route = request.scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        metrics.LATENCY.labels(route=path).observe(time.perf_counter() - start)
        metrics.REQUESTS.labels(method=request.method, route=path, status=str(status)).inc()


# --- health, metrics, version -----------------------------------------------------

def health_payload() -> tuple[int, dict]:
    if state.settings.profile.broken_health:
        metrics.SERVICE_HEALTH.set(0)
        return 500, {"status": "error", "service": SERVICE,
                     "error": "this release is broken on purpose (test fixture)"}
    db_ok, redis_ok = check_database(), check_redis()
    metrics.SERVICE_HEALTH.set(1 if db_ok and redis_ok else 0)
    if db_ok and redis_ok:
        return 200, {"status": "ok", "service": SERVICE}
    return 503, {"status": "unavailable", "service": SERVICE,
                 "checks": {"database": "ok" if db_ok else "error",
                            "redis": "ok" if redis_ok else "error"}}


@app.get("/health")
def health():
    code, body = health_payload()
    return JSONResponse(body, status_code=code)


@app.get("/metrics")
def metrics_endpoint():
    health_payload()  # refresh bot_api_service_health at scrape time
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@app.get("/version")
def version():
    return {"release": state.settings.release}


@app.get("/env-check")
def env_check(name: str = Query(..., min_length=1, max_length=200)):
    """sha256 of an environment variable's value (never the value): lets tests prove
    that secrets with quotes, $, #, spaces or newlines arrive byte for byte."""
    if not state.settings.env_check_enabled:
        return JSONResponse({"detail": "disabled"}, status_code=404)
    value = os.environb.get(name.encode("utf-8", "surrogateescape"))
    if value is None:
        return JSONResponse({"name": name, "present": False}, status_code=404)
    return {"name": name, "present": True, "sha256": hashlib.sha256(value).hexdigest()}


# --- bookings ------------------------------------------------------------------------

class BookingIn(BaseModel):
    client_id: str = Field(min_length=1, max_length=128)
    slot: datetime
    note: Optional[str] = Field(default=None, max_length=500)


class CancelIn(BaseModel):
    actor: Literal["client", "master"] = "client"
    reason: Optional[str] = Field(default=None, max_length=500)


def cache_key(client_id: str) -> str:
    return f"bookings:list:{client_id}"


def drop_cache(client_id: str) -> None:
    try:
        state.redis.delete(cache_key(client_id))
    except Exception:
        pass


def rate_limited(client_id: str) -> bool:
    """Fixed one-minute window per client in Redis; fails open when Redis is down."""
    window = int(time.time() // 60)
    key = f"ratelimit:bookings:{client_id}:{window}"
    try:
        pipe = state.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, 120)
        count = int(pipe.execute()[0])
    except Exception:
        metrics.ABUSE_OUTCOMES.labels(outcome="fail_open").inc()
        return False
    if count > state.settings.rate_limit_per_minute:
        metrics.ABUSE_OUTCOMES.labels(outcome="throttled").inc()
        return True
    metrics.ABUSE_OUTCOMES.labels(outcome="allowed").inc()
    return False


def failed(exc: Exception) -> JSONResponse:
    metrics.BOOKING_OUTCOMES.labels(outcome="failed").inc()
    log_event("booking_error", level="ERROR", service=SERVICE, error=type(exc).__name__)
    return JSONResponse({"detail": "database error"}, status_code=503)


@app.post("/bookings", status_code=201)
def create_booking(body: BookingIn):
    if rate_limited(body.client_id):
        metrics.BOOKING_OUTCOMES.labels(outcome="throttled").inc()
        return JSONResponse({"detail": "too many booking attempts, retry later"},
                            status_code=429, headers={"Retry-After": "60"})
    slot = body.slot if body.slot.tzinfo else body.slot.replace(tzinfo=timezone.utc)
    cols, vals = "client_id, slot", ":client_id, :slot"
    params = {"client_id": body.client_id, "slot": slot}
    if state.settings.profile.note:
        cols, vals = cols + ", note", vals + ", :note"
        params["note"] = body.note
    try:
        with state.engine.begin() as conn:
            row = conn.execute(text(f"INSERT INTO bookings ({cols}) VALUES ({vals}) "
                                    f"RETURNING {booking_columns()}"), params).one()
    except IntegrityError:
        metrics.BOOKING_OUTCOMES.labels(outcome="rejected").inc()
        try:
            with state.engine.connect() as conn:
                active = conn.execute(text(f"SELECT {booking_columns()} FROM bookings "
                                           "WHERE client_id = :c AND status = 'active'"),
                                      {"c": body.client_id}).first()
        except SQLAlchemyError:
            active = None
        return JSONResponse({"detail": "client already has an active booking",
                             "active_booking": booking_json(active) if active else None},
                            status_code=409)
    except SQLAlchemyError as exc:
        return failed(exc)
    drop_cache(body.client_id)
    metrics.BOOKING_OUTCOMES.labels(outcome="created").inc()
    return JSONResponse(booking_json(row), status_code=201)


@app.get("/bookings")
def list_bookings(client_id: str = Query(..., min_length=1, max_length=128)):
    key = cache_key(client_id)
    try:
        cached = state.redis.get(key)
    except Exception:
        cached = None
    if cached is not None:
        return Response(cached, media_type="application/json", headers={"X-Cache": "hit"})
    try:
        with state.engine.connect() as conn:
            rows = conn.execute(text(f"SELECT {booking_columns()} FROM bookings "
                                     "WHERE client_id = :c ORDER BY id"),
                                {"c": client_id}).all()
    except SQLAlchemyError as exc:
        log_event("list_error", level="ERROR", service=SERVICE, error=type(exc).__name__)
        return JSONResponse({"detail": "database error"}, status_code=503)
    payload = json.dumps([booking_json(r) for r in rows])
    try:
        state.redis.set(key, payload, ex=state.settings.cache_ttl_seconds)
    except Exception:
        pass
    return Response(payload, media_type="application/json", headers={"X-Cache": "miss"})


@app.get("/bookings/{booking_id}")
def get_booking(booking_id: int):
    try:
        with state.engine.connect() as conn:
            row = conn.execute(text(f"SELECT {booking_columns()} FROM bookings WHERE id = :i"),
                               {"i": booking_id}).first()
    except SQLAlchemyError as exc:
        log_event("get_error", level="ERROR", service=SERVICE, error=type(exc).__name__)
        return JSONResponse({"detail": "database error"}, status_code=503)
    if row is None:
        return JSONResponse({"detail": "booking not found"}, status_code=404)
    return booking_json(row)


@app.post("/bookings/{booking_id}/cancel")
def cancel_booking(booking_id: int, body: Optional[CancelIn] = None):
    body = body or CancelIn()
    reason = (body.reason or "").strip() or None
    if body.actor == "master" and reason is None:
        metrics.BOOKING_OUTCOMES.labels(outcome="rejected").inc()
        return JSONResponse({"detail": "a master must give a reason to cancel"}, status_code=422)
    try:
        with state.engine.begin() as conn:
            row = conn.execute(text(
                "UPDATE bookings SET status = 'cancelled', cancelled_at = now(), "
                "cancelled_by = :actor, cancel_reason = :reason "
                f"WHERE id = :i AND status = 'active' RETURNING {booking_columns()}"),
                {"i": booking_id, "actor": body.actor, "reason": reason}).first()
            exists = row is not None or conn.execute(
                text("SELECT 1 FROM bookings WHERE id = :i"), {"i": booking_id}).first() is not None
    except SQLAlchemyError as exc:
        return failed(exc)
    if row is None:
        if not exists:
            return JSONResponse({"detail": "booking not found"}, status_code=404)
        metrics.BOOKING_OUTCOMES.labels(outcome="rejected").inc()
        return JSONResponse({"detail": "booking is not active"}, status_code=409)
    drop_cache(row._mapping["client_id"])
    metrics.BOOKING_OUTCOMES.labels(outcome="cancelled").inc()
    return booking_json(row)
