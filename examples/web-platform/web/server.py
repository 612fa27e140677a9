"""The web frontend (port 3000): the static site, plus /api/* proxied to the API with
the /api prefix removed (/api/healthz -> http://api:8000/healthz). Python's standard
library only. The web entry of the app: onevm's proxy (and TLS) sit in front of it.

Env: API_URL (default http://api:8000), PORT (3000), APP_RELEASE (the image's release).
SIGTERM stops it at once (in-flight requests are short; the proxy retries on the other
container during a switch).
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import sys
import threading
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
RELEASE = os.environ.get("APP_RELEASE", "dev")
API = urllib.parse.urlsplit(os.environ.get("API_URL", "http://api:8000"))
PORT = int(os.environ.get("PORT", "3000"))
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailers", "transfer-encoding", "upgrade", "host", "content-length"}
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css", ".js": "text/javascript",
         ".svg": "image/svg+xml", ".ico": "image/x-icon", ".json": "application/json"}


def log_event(event: str, **fields) -> None:
    record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
              "level": "INFO", "event": event, "service": "web"}
    record.update(fields)
    print(json.dumps(record), flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "web-platform-web"

    def log_message(self, fmt, *args):  # quiet: no line per request
        pass

    def send_body(self, status: int, body: bytes, ctype: str, extra=()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def proxy(self) -> None:
        path = self.path[len("/api"):] or "/"
        if not path.startswith("/"):
            path = "/" + path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["X-Forwarded-Prefix"] = "/api"
        conn = http.client.HTTPConnection(API.hostname, API.port or 80, timeout=15)
        try:
            conn.request(self.command, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            extra = [(k, v) for k, v in resp.getheaders()
                     if k.lower() not in HOP_BY_HOP and k.lower() != "content-type"]
            self.send_body(resp.status, data, resp.getheader("Content-Type", "application/octet-stream"), extra)
        except OSError as exc:
            self.send_body(502, json.dumps({"status": "error", "service": "web",
                                            "error": f"api unreachable: {exc}"}).encode(),
                           "application/json")
        finally:
            conn.close()

    def static(self) -> None:
        rel = urllib.parse.urlsplit(self.path).path.lstrip("/") or "index.html"
        target = (STATIC / rel).resolve()
        if STATIC not in target.parents or not target.is_file():
            self.send_body(404, b"not found\n", "text/plain")
            return
        body = target.read_bytes()
        if target.suffix == ".html":
            body = body.replace(b"{{RELEASE}}", RELEASE.encode())
        self.send_body(200, body, TYPES.get(target.suffix, "application/octet-stream"),
                       [("Cache-Control", "no-cache")])

    def route(self) -> None:
        if self.path == "/api" or self.path.startswith("/api/"):
            self.proxy()
        elif self.command in ("GET", "HEAD"):
            self.static()
        else:
            self.send_body(405, b"method not allowed\n", "text/plain")

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = route


def main() -> int:
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.daemon_threads = True
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    log_event("startup", release=RELEASE, port=PORT, api=API.geturl())
    stop.wait()
    server.shutdown()
    server.server_close()
    log_event("shutdown", release=RELEASE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
