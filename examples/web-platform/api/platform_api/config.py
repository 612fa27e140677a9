"""Settings from the environment and the release profile baked into the image."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL, make_url

APP_DIR = Path(__file__).resolve().parent.parent
RELEASE_FILE = APP_DIR / "release.json"


class ConfigError(Exception):
    """A required setting is missing or malformed (the message never holds a secret)."""


def sqlalchemy_url(database_url: str) -> URL:
    """postgresql://user:pass@host:5432/db (percent-encoded) -> the psycopg 3 URL."""
    if not database_url:
        raise ConfigError("DATABASE_URL is not set")
    try:
        url = make_url(database_url)
    except Exception as exc:  # the message could echo the URL: say only what is wrong
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
        return Profile(features={"price": True})
    return Profile(str(data.get("release", "dev")), str(data.get("profile", "dev")),
                   dict(data.get("features", {})))


@dataclass(frozen=True)
class Settings:
    database_url: URL
    secret_key: bytes
    release: str
    profile: Profile


def load_settings() -> Settings:
    profile = load_profile()
    secret = os.environ.get("SECRET_KEY", "")
    if len(secret) < 16:
        raise ConfigError("SECRET_KEY must be set, at least 16 characters")
    return Settings(
        database_url=sqlalchemy_url(os.environ.get("DATABASE_URL", "")),
        secret_key=secret.encode(),
        release=os.environ.get("APP_RELEASE") or profile.release,
        profile=profile,
    )
