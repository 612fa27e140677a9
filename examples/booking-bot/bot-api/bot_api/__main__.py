"""Entry point of the bot-api image: check the configuration, then serve on 0.0.0.0:8080.

Exit codes: 0 stopped cleanly, 2 configuration error (e.g. TELEGRAM_BOT_TOKEN empty).
"""
from __future__ import annotations

import copy
import os
import sys

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from .config import ConfigError, load_settings
from .logs import log_event


def main() -> int:
    try:
        load_settings()
    except ConfigError as exc:  # messages name the setting, never a value
        log_event("config_error", level="ERROR", service="bot-api", error=str(exc))
        return 2
    log_config = copy.deepcopy(LOGGING_CONFIG)
    if os.environ.get("LOG_PROBES", "0") not in ("1", "true", "yes"):
        log_config.setdefault("filters", {})["quiet_probes"] = {"()": "bot_api.logs.QuietProbes"}
        log_config["handlers"]["access"]["filters"] = ["quiet_probes"]
    uvicorn.run(
        "bot_api.main:app",
        host=os.environ.get("HOST", "0.0.0.0"),
        port=int(os.environ.get("PORT", "8080")),
        workers=1,
        log_level=os.environ.get("LOG_LEVEL", "info"),
        log_config=log_config,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
