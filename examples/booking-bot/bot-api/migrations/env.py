"""Alembic environment: the URL comes from DATABASE_URL (never from alembic.ini, whose
configparser would choke on a percent-encoded password)."""
import os

from alembic import context
from sqlalchemy import create_engine, pool, text

from bot_api.config import sqlalchemy_url

LOCK_ID = 7270001  # pg advisory lock: two migrate runs never interleave


def run_migrations_online() -> None:
    engine = create_engine(sqlalchemy_url(os.environ.get("DATABASE_URL", "")),
                           poolclass=pool.NullPool, connect_args={"connect_timeout": 5})
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_ID})
        conn.commit()
        try:
            # One transaction for the whole upgrade: with PostgreSQL's transactional
            # DDL a failing migration leaves the schema exactly as it was.
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
                pass  # the lock goes with the session anyway


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported")
run_migrations_online()
