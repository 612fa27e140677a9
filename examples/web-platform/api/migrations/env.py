"""Alembic environment of `alembic upgrade head` (the migrate service).

- The URL comes from DATABASE_URL (postgresql://, percent-encoded credentials).
- It waits up to MIGRATE_WAIT_SECONDS (default 60) for the database to answer.
- One transaction for the whole upgrade under an advisory lock: with PostgreSQL's
  transactional DDL a failing migration leaves the schema exactly as it was.
- A database already at a revision this image does not know (a newer release migrated
  it, and this older one is being rolled back to) is left unchanged and the command
  exits 0: migrations are additive, so older code runs on the newer schema.
"""
import os
import sys
import time

from alembic import context
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool, text

from platform_api.config import ConfigError, sqlalchemy_url

LOCK_ID = 7270101


def connect_engine():
    try:
        url = sqlalchemy_url(os.environ.get("DATABASE_URL", ""))
    except ConfigError as exc:
        sys.exit(f"migrate: {exc}")
    engine = create_engine(url, poolclass=pool.NullPool, connect_args={"connect_timeout": 3})
    deadline = time.monotonic() + int(os.environ.get("MIGRATE_WAIT_SECONDS", "60"))
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return engine
        except Exception as exc:
            detail = " ".join(str(getattr(exc, "orig", exc)).split())[:300]
            if "password authentication failed" in detail or "does not exist" in detail \
                    or time.monotonic() >= deadline:
                sys.exit(f"migrate: database not usable: {detail}")
            time.sleep(1)


def run_migrations_online() -> None:
    script = context.script
    engine = connect_engine()
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_ID})
        conn.commit()
        try:
            current = MigrationContext.configure(conn).get_current_heads()
            unknown = []
            for rev in current:
                try:
                    if script.get_revision(rev) is None:
                        unknown.append(rev)
                except Exception:
                    unknown.append(rev)
            if unknown:
                print(f"migrate: the database is at {', '.join(unknown)}, newer than this "
                      f"image's head {script.get_current_head()}: leaving it unchanged",
                      file=sys.stderr)
                return
            context.configure(connection=conn, target_metadata=None,
                              transaction_per_migration=False)
            with context.begin_transaction():
                context.run_migrations()
            conn.commit()
        finally:
            try:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_ID})
                conn.commit()
            except Exception:
                pass


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported")
run_migrations_online()
