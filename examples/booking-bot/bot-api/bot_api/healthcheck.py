"""Container HEALTHCHECK: exit 0 when GET /health answers 200, else 1."""
import os
import sys
import urllib.request

url = f"http://127.0.0.1:{os.environ.get('PORT', '8080')}/health"
try:
    with urllib.request.urlopen(url, timeout=3) as resp:
        sys.exit(0 if resp.status == 200 else 1)
except Exception as exc:  # HTTPError for 5xx, URLError when not listening
    print(f"unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
