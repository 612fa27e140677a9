"""The worker: no HTTP at all. At start it creates its tables (no migrate service), then
every TICK_SECONDS it delivers due reminders (marks them sent; a real bot would call
Telegram here), writes a row to `heartbeats` and touches the heartbeat file the
container healthcheck reads.

Schema, made idempotently at start under an advisory lock:
  v1  reminders (id, chat_id, text, remind_at, sent_at, created_at), heartbeats
  v2  + reminders.timezone (text, default 'UTC'): additive, v1 runs on it
Release `broken` starts, logs, and then never beats: the container turns unhealthy.

Env: DATABASE_URL, TELEGRAM_BOT_TOKEN (required, never logged), TICK_SECONDS (5),
HEARTBEAT_FILE (/tmp/heartbeat), APP_RELEASE (overrides the reported release).
Exit codes: 0 stopped (SIGTERM: within a second), 2 configuration error.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from .release import build_release, profile

SCHEMA_LOCK = 7270401
SCHEMA_V1 = [
    """CREATE TABLE IF NOT EXISTS reminders (
           id         bigserial   PRIMARY KEY,
           chat_id    bigint      NOT NULL,
           text       text        NOT NULL,
           remind_at  timestamptz NOT NULL,
           sent_at    timestamptz,
           created_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX IF NOT EXISTS ix_reminders_due ON reminders (remind_at) WHERE sent_at IS NULL",
    """CREATE TABLE IF NOT EXISTS heartbeats (
           id        bigserial   PRIMARY KEY,
           beat_at   timestamptz NOT NULL DEFAULT now(),
           release   text        NOT NULL,
           delivered integer     NOT NULL DEFAULT 0)""",
]
SCHEMA_V2 = ["ALTER TABLE reminders ADD COLUMN IF NOT EXISTS timezone text NOT NULL DEFAULT 'UTC'"]


def log_event(event: str, level: str = "INFO", **fields) -> None:
    record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
              "level": level, "event": event, "service": "worker"}
    record.update(fields)
    print(json.dumps(record, default=str), flush=True)


def one_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


class Worker:
    def __init__(self, url: str, release: str, prof: str, tick: float, heartbeat: Path):
        self.url, self.release, self.profile = url, release, prof
        self.tick, self.heartbeat = tick, heartbeat
        self.stop = threading.Event()
        self.conn: psycopg.Connection | None = None

    def connection(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.conn = psycopg.connect(self.url, connect_timeout=3, autocommit=True,
                                        application_name="worker-bot")
        return self.conn

    def ensure_schema(self) -> None:
        statements = SCHEMA_V1 + (SCHEMA_V2 if self.profile == "v2" else [])
        with self.connection().transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            for stmt in statements:
                self.conn.execute(stmt)

    def beat(self) -> int:
        conn = self.connection()
        with conn.transaction():
            due = conn.execute(
                "UPDATE reminders SET sent_at = now() WHERE id IN (SELECT id FROM reminders "
                "WHERE sent_at IS NULL AND remind_at <= now() ORDER BY remind_at LIMIT 100 "
                "FOR UPDATE SKIP LOCKED) RETURNING id, chat_id").fetchall()
            conn.execute("INSERT INTO heartbeats (release, delivered) VALUES (%s, %s)",
                         (self.release, len(due)))
        for rid, chat in due:
            log_event("reminder_sent", reminder=rid, chat_id=chat)
        # Written only after the database took the row: a fresh file means a working loop.
        tmp = self.heartbeat.with_suffix(".tmp")
        tmp.write_text(json.dumps({"ts": datetime.now(timezone.utc).isoformat(), "release": self.release}))
        tmp.replace(self.heartbeat)
        return len(due)

    def run(self) -> None:
        ready, failing = False, False
        while not self.stop.is_set():
            try:
                if not ready:
                    self.ensure_schema()
                    ready = True
                    log_event("schema_ready", release=self.release, profile=self.profile)
                if self.profile == "broken":
                    # The broken release hangs here (a stuck worker): no more heartbeats.
                    log_event("stuck", level="ERROR", release=self.release,
                              detail="this release is broken on purpose (test fixture)")
                    self.stop.wait()
                    break
                self.beat()
                if failing:
                    log_event("recovered")
                failing = False
            except Exception as exc:  # the database is away: retry, the healthcheck tells
                if not failing:
                    log_event("tick_failed", level="WARNING", error=one_line(exc))
                failing = True
                if self.conn is not None:
                    try:
                        self.conn.close()
                    except Exception:
                        pass
                    self.conn = None
            self.stop.wait(self.tick)


def main() -> int:
    release = build_release()
    reported = os.environ.get("APP_RELEASE") or release
    missing = [k for k in ("DATABASE_URL", "TELEGRAM_BOT_TOKEN") if not os.environ.get(k)]
    if missing:  # names only, never a value
        log_event("config_error", level="ERROR", error=f"must be set and non-empty: {', '.join(missing)}")
        return 2
    try:
        tick = float(os.environ.get("TICK_SECONDS", "5"))
    except ValueError:
        log_event("config_error", level="ERROR", error="TICK_SECONDS must be a number")
        return 2
    heartbeat = Path(os.environ.get("HEARTBEAT_FILE", "/tmp/heartbeat"))
    worker = Worker(os.environ["DATABASE_URL"], reported, profile(release), tick, heartbeat)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop.set())
    signal.signal(signal.SIGINT, lambda *_: worker.stop.set())
    log_event("startup", release=reported, image_release=release, profile=worker.profile,
              tick_seconds=tick, telegram_token_set=True, pid=os.getpid())
    worker.run()
    log_event("shutdown", release=reported)
    return 0


if __name__ == "__main__":
    sys.exit(main())
