"""Settings from the environment and the release profile baked into the image."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent.parent
RELEASE_FILE = APP_DIR / "release.json"


class ConfigError(Exception):
    """A required setting is missing or malformed (the message never holds a secret)."""


def sqlalchemy_url(database_url: str):
    """postgresql://... -> the SQLAlchemy psycopg 3 URL (for Alembic)."""
    from sqlalchemy.engine import make_url

    if not database_url:
        raise ConfigError("DATABASE_URL is not set")
    try:
        url = make_url(database_url)
    except Exception as exc:
        raise ConfigError(f"DATABASE_URL is not a valid URL ({type(exc).__name__})") from None
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise ConfigError("DATABASE_URL must be a postgresql:// URL")
    return url.set(drivername="postgresql+psycopg")


@dataclass(frozen=True)
class Profile:
    release: str = "dev"
    profile: str = "dev"
    features: dict = field(default_factory=dict)


def load_profile() -> Profile:
    try:
        data = json.loads(RELEASE_FILE.read_text())
    except FileNotFoundError:
        return Profile(features={"category": True})
    return Profile(str(data.get("release", "dev")), str(data.get("profile", "dev")),
                   dict(data.get("features", {})))


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    bot_token: str
    poll_seconds: float
    port: int
    release: str
    profile: Profile


def load_settings() -> Settings:
    profile = load_profile()
    missing = [k for k in ("DATABASE_URL", "REDIS_URL", "BOT_TOKEN") if not os.environ.get(k)]
    if missing:
        raise ConfigError(f"must be set and non-empty: {', '.join(missing)}")
    url = os.environ["DATABASE_URL"]
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("DATABASE_URL must be a postgresql:// URL")
    try:
        poll = float(os.environ.get("POLL_SECONDS", "5"))
        port = int(os.environ.get("PORT", "8080"))
    except ValueError:
        raise ConfigError("POLL_SECONDS and PORT must be numbers") from None
    return Settings(url, os.environ["REDIS_URL"], os.environ["BOT_TOKEN"], poll, port,
                    os.environ.get("APP_RELEASE") or profile.release, profile)
