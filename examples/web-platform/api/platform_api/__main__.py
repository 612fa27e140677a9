"""The api image's command: check the configuration, then serve on 0.0.0.0:8000.

Exit codes: 0 stopped cleanly (SIGTERM: uvicorn stops within a second or two),
2 configuration error (DATABASE_URL or SECRET_KEY missing).
"""
from __future__ import annotations

import json
import os
import sys

import uvicorn

from .config import ConfigError, load_settings


def main() -> int:
    try:
        load_settings()
    except ConfigError as exc:  # names the setting, never a value
        print(json.dumps({"level": "ERROR", "event": "config_error", "service": "api",
                          "error": str(exc)}), flush=True)
        return 2
    uvicorn.run("platform_api.main:app", host="0.0.0.0", port=int(os.environ.get("PORT", "8000")),
                workers=1, log_level=os.environ.get("LOG_LEVEL", "info"),
                proxy_headers=True, timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
