"""Build step: shape /app for one release (the image's RELEASE build argument).

  v1          offers + polls tables (migration 0001)
  v2          + migration 0002 (offers.category); the API accepts and returns it
  broken      v1, but GET /health answers 503: the gate fails, the bot container turns unhealthy
  badmigrate  v2 + migration 0003_fail, which raises: `alembic upgrade head` exits 1
              and the whole upgrade is rolled back
  any other   like v2, reporting its own release id

Copies migrations/releases/<profile>/*.py into migrations/versions/, drops the rest of
migrations/releases/ and writes /app/release.json.
"""
import json
import re
import shutil
import sys
from pathlib import Path

PROFILES = {
    "v1": {"migrations": [], "features": {"category": False, "broken_health": False}},
    "v2": {"migrations": ["v2"], "features": {"category": True, "broken_health": False}},
    "broken": {"migrations": [], "features": {"category": False, "broken_health": True}},
    "badmigrate": {"migrations": ["v2", "badmigrate"], "features": {"category": True, "broken_health": False}},
}
DEFAULT_PROFILE = "v2"

release = sys.argv[1] if len(sys.argv) > 1 else ""
if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", release) or ".." in release:
    sys.exit(f"invalid release id: {release!r}")
name = release if release in PROFILES else DEFAULT_PROFILE
profile = PROFILES[name]

app = Path(__file__).resolve().parent
versions = app / "migrations" / "versions"
for extra in profile["migrations"]:
    for src in sorted((app / "migrations" / "releases" / extra).glob("*.py")):
        shutil.copy2(src, versions / src.name)
shutil.rmtree(app / "migrations" / "releases")
migrations = sorted(p.name for p in versions.glob("*.py"))
(app / "release.json").write_text(json.dumps(
    {"release": release, "profile": name, "features": profile["features"],
     "migrations": migrations}, indent=2) + "\n")
print(f"release {release}: profile {name}, migrations {migrations}")
