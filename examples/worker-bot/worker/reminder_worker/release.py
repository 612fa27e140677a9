"""The release this image was built as (the build arg RELEASE, in /app/release) and the
profile it selects: v1, v2, broken; any other ID behaves like v2 and reports itself."""
from __future__ import annotations

import os
import re
from pathlib import Path

RELEASE_FILE = Path(os.environ.get("RELEASE_FILE", "/app/release"))


def build_release() -> str:
    try:
        rel = RELEASE_FILE.read_text().strip()
    except FileNotFoundError:
        return "dev"
    return rel if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", rel) else "dev"


def profile(release: str) -> str:
    return release if release in ("v1", "v2", "broken") else "v2"
