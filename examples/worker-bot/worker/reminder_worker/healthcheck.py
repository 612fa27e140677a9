"""Container healthcheck (the worker serves no HTTP): healthy only while the heartbeat
file is fresh (younger than HEARTBEAT_MAX_AGE seconds, default 20: the loop beats every
5 s after each database write) AND PostgreSQL answers now."""
import os
import sys
import time
from pathlib import Path

import psycopg

path = Path(os.environ.get("HEARTBEAT_FILE", "/tmp/heartbeat"))
max_age = float(os.environ.get("HEARTBEAT_MAX_AGE", "20"))
try:
    age = time.time() - path.stat().st_mtime
except FileNotFoundError:
    sys.exit("unhealthy: no heartbeat yet")
if age > max_age:
    sys.exit(f"unhealthy: last heartbeat {age:.0f}s ago")
try:
    with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=3) as conn:
        conn.execute("SELECT 1")
except Exception as exc:
    sys.exit(f"unhealthy: database: {type(exc).__name__}")
sys.exit(0)
