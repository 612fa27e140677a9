"""One JSON object per line on stdout (json.dumps default separators: `"event": "startup"`)."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone


def log_event(event: str, level: str = "INFO", **fields) -> None:
    record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
              "level": level, "event": event}
    record.update(fields)
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


class QuietProbes:
    """uvicorn.access filter: drop successful GET /health and /metrics lines (container
    healthchecks and scrapes), so `docker compose logs bot-api --tail=50` keeps the
    startup line. LOG_PROBES=1 keeps them."""

    PATHS = ("/health", "/metrics")

    def filter(self, record) -> bool:
        args = record.args
        if not isinstance(args, tuple) or len(args) != 5:
            return True
        _client, method, path, _version, status = args
        return not (method == "GET" and str(path).split("?")[0] in self.PATHS
                    and str(status) == "200")
