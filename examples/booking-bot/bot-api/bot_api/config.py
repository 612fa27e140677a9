"""Settings from the environment and the release profile baked into the image."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL, make_url

APP_DIR = Path(__file__).resolve().parent.parent
RELEASE_FILE = Path(os.environ.get("BOT_API_RELEASE_FILE", APP_DIR / "release.json"))
MIGRATIONS_DIR = APP_DIR / "migrations"


class ConfigError(Exception):
    """A required setting is missing or malformed (the message never holds a secret)."""


def sqlalchemy_url(database_url: str) -> URL:
    """postgresql://user:pass@host:5432/db (password percent-encoded) -> psycopg 3 URL.

    make_url() percent-decodes user and password, so any character may appear in them.
    """
    if not database_url:
        raise ConfigError("DATABASE_URL is not set")
    try:
        url = make_url(database_url)
    except Exception as exc:  # the message could echo the URL: say only what is wrong
        raise ConfigError(f"DATABASE_URL is not a valid URL ({type(exc).__name__})") from None
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise ConfigError("DATABASE_URL must be a postgresql:// URL")
    return url.set(drivername="postgresql+psycopg")


def describe_url(url: URL) -> str:
    """host:port/db, for logs: never the user's password."""
    return f"{url.host}:{url.port or 5432}/{url.database}"


@dataclass(frozen=True)
class ReleaseProfile:
    """What this image was built as (scripts: select_release.py)."""

    release: str = "dev"
    profile: str = "dev"
    features: dict = field(default_factory=dict)

    @property
    def note(self) -> bool:
        return bool(self.features.get("note"))

    @property
    def broken_health(self) -> bool:
        return bool(self.features.get("broken_health"))


def load_profile() -> ReleaseProfile:
    try:
        data = json.loads(RELEASE_FILE.read_text())
    except FileNotFoundError:
        return ReleaseProfile(features={"note": True})
    return ReleaseProfile(
        release=str(data.get("release", "dev")),
        profile=str(data.get("profile", "dev")),
        features=dict(data.get("features", {})),
    )


@dataclass(frozen=True)
class Settings:
    database_url: URL
    redis_url: str
    release: str
    profile: ReleaseProfile
    telegram_updates_mode: str
    rate_limit_per_minute: int
    cache_ttl_seconds: int
    env_check_enabled: bool


def load_settings(require_token: bool = True) -> Settings:
    profile = load_profile()
    if require_token and not os.environ.get("TELEGRAM_BOT_TOKEN"):
        raise ConfigError("TELEGRAM_BOT_TOKEN must be set and non-empty")
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        raise ConfigError("REDIS_URL is not set")
    try:
        rate = int(os.environ.get("BOOKING_RATE_LIMIT_PER_MINUTE", "20"))
        ttl = int(os.environ.get("BOOKINGS_CACHE_TTL_SECONDS", "15"))
    except ValueError:
        raise ConfigError("BOOKING_RATE_LIMIT_PER_MINUTE and BOOKINGS_CACHE_TTL_SECONDS must be integers") from None
    return Settings(
        database_url=sqlalchemy_url(os.environ.get("DATABASE_URL", "")),
        redis_url=redis_url,
        release=os.environ.get("APP_RELEASE") or profile.release,
        profile=profile,
        telegram_updates_mode=os.environ.get("TELEGRAM_UPDATES_MODE", "polling"),
        rate_limit_per_minute=rate,
        cache_ttl_seconds=ttl,
        env_check_enabled=os.environ.get("ENV_CHECK_ENABLED", "1") not in ("0", "false", "no"),
    )
