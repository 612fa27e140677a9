"""The bot: every POLL_SECONDS it "polls" for offers (one row in `polls`, counters in
Redis), and it serves a small HTTP status API on PORT (8080) that nginx fronts:

  GET  /health   per-dependency health: 200 {"status":"healthy","release":..,
                 "services":{"postgres":"healthy","redis":"healthy"}}, else 503 "unhealthy"
  GET  /version  {"release": ...}
  GET  /stats    {"polls": <Redis counter>, "offers": <rows>, "last_poll": ...}
  GET  /offers   the latest offers;  POST /offers {"store","title"[,"category" (v2)]}

Exit codes: 0 stopped (SIGTERM/SIGINT: within a second), 2 configuration error.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import redis

from .config import ConfigError, Settings, load_settings

SERVICE = "bot"


def log_event(event: str, level: str = "INFO", **fields) -> None:
    record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
              "level": level, "event": event, "service": SERVICE}
    record.update(fields)
    print(json.dumps(record, default=str), flush=True)


class Bot:
    def __init__(self, settings: Settings):
        self.s = settings
        self.stop = threading.Event()
        self.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=2,
                                          socket_connect_timeout=2, decode_responses=True)
        self.last_poll: str | None = None
        self.lock = threading.Lock()

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.s.database_url, connect_timeout=3, autocommit=True,
                               application_name="nginx-bot")

    # --- the loop ----------------------------------------------------------------------
    def poll_once(self) -> None:
        with self.connect() as conn:
            seen = conn.execute("SELECT count(*) FROM offers").fetchone()[0]
            conn.execute("INSERT INTO polls (offers_seen, release) VALUES (%s, %s)",
                         (seen, self.s.release))
        pipe = self.redis.pipeline()
        pipe.incr("nginx-bot:polls")
        pipe.incr(f"nginx-bot:polls:{self.s.release}")
        pipe.execute()
        with self.lock:
            self.last_poll = datetime.now(timezone.utc).isoformat(timespec="seconds")

    def run_loop(self) -> None:
        failing = False
        while not self.stop.is_set():
            try:
                self.poll_once()
                if failing:
                    log_event("poll_recovered")
                failing = False
            except Exception as exc:  # keep going: the health endpoint reports it
                if not failing:
                    log_event("poll_failed", level="WARNING",
                              error=f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
                failing = True
            self.stop.wait(self.s.poll_seconds)

    # --- health --------------------------------------------------------------------------
    def check_postgres(self) -> bool:
        try:
            with self.connect() as conn:
                conn.execute("SELECT 1")
            return True
        except Exception:
            return False

    def check_redis(self) -> bool:
        try:
            return bool(self.redis.ping())
        except Exception:
            return False

    def health(self) -> tuple[int, dict]:
        if self.s.profile.features.get("broken_health"):
            return 503, {"status": "unhealthy", "release": self.s.release,
                         "error": "this release is broken on purpose (test fixture)",
                         "services": {"postgres": "unknown", "redis": "unknown"}}
        services = {"postgres": "healthy" if self.check_postgres() else "unhealthy",
                    "redis": "healthy" if self.check_redis() else "unhealthy"}
        ok = all(v == "healthy" for v in services.values())
        with self.lock:
            last = self.last_poll
        return (200 if ok else 503), {"status": "healthy" if ok else "unhealthy",
                                      "release": self.s.release, "services": services,
                                      "last_poll": last}


def make_handler(bot: Bot):
    category = bool(bot.s.profile.features.get("category"))
    columns = "id, store, title, created_at" + (", category" if category else "")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "nginx-bot"

        def log_message(self, fmt, *args):  # nginx logs the requests
            pass

        def reply(self, code: int, body) -> None:
            data = (json.dumps(body, default=str) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/health":
                self.reply(*bot.health())
            elif path == "/version":
                self.reply(200, {"release": bot.s.release})
            elif path == "/stats":
                try:
                    with bot.connect() as conn:
                        offers = conn.execute("SELECT count(*) FROM offers").fetchone()[0]
                    polls = int(bot.redis.get("nginx-bot:polls") or 0)
                except Exception as exc:
                    self.reply(503, {"error": type(exc).__name__})
                    return
                self.reply(200, {"polls": polls, "offers": offers, "last_poll": bot.last_poll,
                                 "release": bot.s.release})
            elif path == "/offers":
                try:
                    with bot.connect() as conn:
                        cur = conn.execute(f"SELECT {columns} FROM offers ORDER BY id DESC LIMIT 50")
                        names = [d.name for d in cur.description]
                        rows = [dict(zip(names, r)) for r in cur.fetchall()]
                except Exception as exc:
                    self.reply(503, {"error": type(exc).__name__})
                    return
                self.reply(200, rows)
            else:
                self.reply(404, {"error": "not found"})

        def do_POST(self):
            if self.path.split("?", 1)[0] != "/offers":
                self.reply(404, {"error": "not found"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(min(length, 65536)) or b"{}")
                store, title = str(body["store"]).strip(), str(body["title"]).strip()
                if not store or not title:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                self.reply(422, {"error": "need store and title"})
                return
            if "category" in body and not category:
                self.reply(422, {"error": "category needs release v2"})
                return
            try:
                with bot.connect() as conn:
                    if category:
                        cur = conn.execute(
                            f"INSERT INTO offers (store, title, category) VALUES (%s, %s, %s) RETURNING {columns}",
                            (store, title, str(body.get("category") or "other")))
                    else:
                        cur = conn.execute(
                            f"INSERT INTO offers (store, title) VALUES (%s, %s) RETURNING {columns}",
                            (store, title))
                    names = [d.name for d in cur.description]
                    row = dict(zip(names, cur.fetchone()))
            except Exception as exc:
                self.reply(503, {"error": type(exc).__name__})
                return
            self.reply(201, row)

    return Handler


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:  # names the setting, never a value
        log_event("config_error", level="ERROR", error=str(exc))
        return 2
    bot = Bot(settings)
    signal.signal(signal.SIGTERM, lambda *_: bot.stop.set())
    signal.signal(signal.SIGINT, lambda *_: bot.stop.set())
    server = ThreadingHTTPServer(("0.0.0.0", settings.port), make_handler(bot))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    log_event("startup", release=settings.release, profile=settings.profile.profile,
              features=settings.profile.features, port=settings.port,
              poll_seconds=settings.poll_seconds, bot_token_set=True, pid=os.getpid())
    loop = threading.Thread(target=bot.run_loop, daemon=True)
    loop.start()
    bot.stop.wait()
    server.shutdown()
    loop.join(timeout=3)
    log_event("shutdown", release=settings.release)
    return 0


if __name__ == "__main__":
    sys.exit(main())
