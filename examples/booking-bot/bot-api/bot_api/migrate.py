"""One-shot schema sync (the `migrate` service): `alembic upgrade head` on DATABASE_URL.

Waits (bounded by MIGRATE_WAIT_SECONDS, default 60) for PostgreSQL to accept
connections first. When the database is already at a revision this image does not know
(a newer release migrated it and we are rolling back), it changes nothing and exits 0:
migrations here are additive (expand-only), so an older release runs on a newer schema.
Set MIGRATE_STRICT=1 to make that case an error instead.

Exit codes: 0 schema at head (or ahead, see above); 1 a migration failed (its
transaction is rolled back); 2 configuration error (DATABASE_URL missing/invalid, or
the server refuses the credentials or database);
3 the database did not answer within MIGRATE_WAIT_SECONDS.
"""
from __future__ import annotations

import logging
import os
import sys
import time

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool, text

from .config import MIGRATIONS_DIR, ConfigError, describe_url, load_profile, sqlalchemy_url
from .logs import log_event

SERVICE = "migrate"
FATAL_CONNECT_ERRORS = ("password authentication failed", "does not exist",
                        "no pg_hba.conf entry")


def first_line(exc: Exception) -> str:
    """The driver's message (host, user, reason; never the password), one line."""
    orig = getattr(exc, "orig", None) or exc
    text_ = " ".join(str(orig).split())
    return f"{type(orig).__name__}: {text_}"[:400]


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def main() -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="[%(asctime)s] %(levelname)s: %(name)s: %(message)s",
                        datefmt="%Y-%m-%d %H:%M:%S")
    profile = load_profile()
    try:
        url = sqlalchemy_url(os.environ.get("DATABASE_URL", ""))
        wait = int(os.environ.get("MIGRATE_WAIT_SECONDS", "60"))
    except ConfigError as exc:
        log_event("migrate_failed", level="ERROR", service=SERVICE, error=str(exc))
        return 2
    except ValueError:
        log_event("migrate_failed", level="ERROR", service=SERVICE,
                  error="MIGRATE_WAIT_SECONDS must be an integer")
        return 2
    log_event("migrate_start", service=SERVICE, release=profile.release,
              database=describe_url(url))

    engine = create_engine(url, poolclass=pool.NullPool, connect_args={"connect_timeout": 3})
    deadline = time.monotonic() + wait
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            break
        except Exception as exc:
            detail = first_line(exc)
            # The server answered but refused us: waiting will not help. (The image's
            # first-start bootstrap server listens on no TCP port, so this is final.)
            if any(s in detail for s in FATAL_CONNECT_ERRORS):
                log_event("migrate_failed", level="ERROR", service=SERVICE, error=detail)
                return 2
            if time.monotonic() >= deadline:
                log_event("migrate_failed", level="ERROR", service=SERVICE,
                          error=f"database not reachable within {wait}s: {detail}")
                return 3
            time.sleep(1)

    cfg = alembic_config()
    script = ScriptDirectory.from_config(cfg)
    with engine.connect() as conn:
        before = list(MigrationContext.configure(conn).get_current_heads())
    unknown = []
    for rev in before:
        try:
            if script.get_revision(rev) is None:
                unknown.append(rev)
        except Exception:
            unknown.append(rev)
    if unknown:
        strict = os.environ.get("MIGRATE_STRICT", "0") in ("1", "true", "yes")
        log_event("migrate_schema_ahead", level="ERROR" if strict else "WARNING",
                  service=SERVICE, release=profile.release, current=before,
                  image_head=script.get_current_head(),
                  detail="database is at a revision this release does not know; "
                         "leaving it unchanged")
        return 1 if strict else 0

    try:
        command.upgrade(cfg, "head")
    except Exception as exc:
        log_event("migrate_failed", level="ERROR", service=SERVICE, release=profile.release,
                  error=first_line(exc))
        return 1
    with engine.connect() as conn:
        after = list(MigrationContext.configure(conn).get_current_heads())
    log_event("migrate_done", service=SERVICE, release=profile.release,
              before=before, after=after, changed=before != after)
    return 0


if __name__ == "__main__":
    sys.exit(main())
