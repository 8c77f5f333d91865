"""Configuration read from the environment.

Every setting an operator may change is an environment variable documented in the README.
`create_app` picks the class from `PORTAL_ENV` (development, testing, production).
"""
from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("PORTAL_INSTANCE_PATH", BASE_DIR / "instance"))

#: The development key is public (it is in this file); production refuses to start with it.
DEVELOPMENT_SECRET_KEY = "dev-only-not-secret-change-me"


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def database_url(raw: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever spelling the operator gave."""
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix):]
    return raw


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
    SQLALCHEMY_DATABASE_URI = database_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'portal.sqlite3'}")
    )
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    # PostgreSQL: the longest a statement waits for a row lock (a registration waiting for
    # its event's lock is then told the portal is busy, 503) before giving up.
    DATABASE_LOCK_TIMEOUT_MS = _int("DATABASE_LOCK_TIMEOUT_MS", 10_000)
    INSTANCE_PATH = str(INSTANCE_DIR)

    # Mail. No MAIL_SERVER means messages are kept in a local mailbox under instance/.
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "")
    MAIL_PORT = _int("MAIL_PORT", 25)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    MAIL_USE_TLS = _flag("MAIL_USE_TLS")
    MAIL_USE_SSL = _flag("MAIL_USE_SSL")
    # TLS to the SMTP server checks its certificate against the system's authorities, or the
    # certificates in this PEM file (a relay with its own authority or a self-signed one).
    MAIL_TLS_CA_FILE = os.environ.get("MAIL_TLS_CA_FILE", "")
    MAIL_DEFAULT_SENDER = os.environ.get(
        "MAIL_DEFAULT_SENDER", "Ontario Working Group <no-reply@owg.example.ca>"
    )
    MAIL_LIST_SENDER = os.environ.get("MAIL_LIST_SENDER", "")
    #: The sender of French messages (the name French readers see); unset, MAIL_DEFAULT_SENDER.
    MAIL_DEFAULT_SENDER_FR = os.environ.get(
        "MAIL_DEFAULT_SENDER_FR",
        "" if "MAIL_DEFAULT_SENDER" in os.environ else "Groupe de travail de l'Ontario <no-reply@owg.example.ca>",
    )
    MAIL_REPLY_TO = os.environ.get("MAIL_REPLY_TO", "")
    MAIL_RATE_PER_SECOND = _float("MAIL_RATE_PER_SECOND", 0.0)  # 0 = unlimited
    MAIL_CONNECTIONS = _int("MAIL_CONNECTIONS", 1)
    MAIL_BATCH_SIZE = _int("MAIL_BATCH_SIZE", 200)
    MAIL_RECONNECT_EVERY = _int("MAIL_RECONNECT_EVERY", 1000)
    MAIL_LEASE_SECONDS = _int("MAIL_LEASE_SECONDS", 300)
    # With the backoff (1, 2, 4 ... minutes, at most 6 hours apart): about four days of a
    # relay answering "try later" before a message is given up, as mail servers do.
    MAIL_MAX_ATTEMPTS = _int("MAIL_MAX_ATTEMPTS", 24)
    MAIL_TIMEOUT_SECONDS = _float("MAIL_TIMEOUT_SECONDS", 30.0)
    # Days after a message is sent (or queued, if it never went) before its address and
    # content are emptied from the outbox (portal/mail/retention.py).
    MAIL_RETENTION_DAYS = _int("MAIL_RETENTION_DAYS", 90)

    PORTAL_BASE_URL = os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:5000")
    PORTAL_TIMEZONE = os.environ.get("PORTAL_TIMEZONE", "America/Toronto")
    PORTAL_ORG_NAME = os.environ.get(
        "PORTAL_ORG_NAME", "Ontario Working Group on Collaborative Risk-driven Community Safety"
    )
    # Its name in French, for French pages and emails (the French consent texts already
    # name it so); empty: the name above in both languages.
    PORTAL_ORG_NAME_FR = os.environ.get(
        "PORTAL_ORG_NAME_FR",
        "Groupe de travail de l'Ontario sur la sécurité communautaire collaborative axée sur les risques",
    )
    PORTAL_ORG_ADDRESS = os.environ.get(
        "PORTAL_ORG_ADDRESS", "70 Birmingham Street, Toronto, ON M8V 3W6, Canada"
    )
    PORTAL_ORG_CONTACT = os.environ.get("PORTAL_ORG_CONTACT", "owg@owg.example.ca")

    LANGUAGES = ("en", "fr")
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = PORTAL_TIMEZONE
    BABEL_TRANSLATION_DIRECTORIES = str(BASE_DIR / "portal" / "translations")

    MAX_CONTENT_LENGTH = _int("PORTAL_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)
    GUIDELINE_MAX_BYTES = _int("GUIDELINE_MAX_BYTES", 15 * 1024 * 1024)
    # How long copy requests and release notices are kept after a guideline's release.
    GUIDELINE_RETENTION_MONTHS = _int("GUIDELINE_RETENTION_MONTHS", 24)
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    # Enforced on the server against the login session's row (portal/auth/services.py), so a
    # copied or re-signed cookie does not outlive them: signed out after this long without a
    # request, and after this long whatever the activity.
    SESSION_IDLE_MINUTES = _int("SESSION_IDLE_MINUTES", 30)
    SESSION_MAX_HOURS = _int("SESSION_MAX_HOURS", 12)
    # The cookie lasts as long as the login may: it never ends one early without saying why.
    PERMANENT_SESSION_LIFETIME = SESSION_MAX_HOURS * 3600
    HSTS = False
    # Behind a reverse proxy: trust its X-Forwarded-For, -Proto and -Host (one hop).
    PORTAL_PROXY_FIX = _flag("PORTAL_PROXY_FIX")

    # portal/core/rate_limits.py: in-process counters without limits' thread per request.
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "swept-memory://")
    # No X-RateLimit-* headers on every answer: computing them cost about 0.9 ms of a
    # registration's ~8 ms (bench/register_cpu.py). A refused request still says when to come
    # back: the 429 page sets Retry-After (portal/core/pages.py).
    RATELIMIT_HEADERS_ENABLED = False
    LOGIN_FAILURES_PER_ACCOUNT_PER_HOUR = 100


class DevelopmentConfig(Config):
    DEBUG = False


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing-secret-key"
    MAIL_DEFAULT_SENDER = "Ontario Working Group <no-reply@owg.example.ca>"
    PORTAL_BASE_URL = "http://portal.test"
    RATELIMIT_ENABLED = True


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-session"
    REMEMBER_COOKIE_SECURE = True
    HSTS = True


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


class ConfigurationError(SystemExit):
    """The configuration cannot run safely; the message says why in one line. A SystemExit,
    so `flask ...` and gunicorn stop with that line alone (exit status 1), not a traceback
    that buries it."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Configuration error: {message}")


def _repeats_itself(key: str) -> bool:
    """"abcabcabc...": the key is a short piece written again and again."""
    return any(key == (key[:size] * (len(key) // size + 1))[:len(key)] for size in range(1, len(key) // 2 + 1))


def check_production(settings: dict) -> None:
    key = settings.get("SECRET_KEY") or ""
    if not key or key == DEVELOPMENT_SECRET_KEY:
        raise ConfigurationError(
            "SECRET_KEY is missing or is the public development key; set a long random "
            "SECRET_KEY (python -c 'import secrets; print(secrets.token_urlsafe(48))')."
        )
    if len(key) < 32:
        raise ConfigurationError("SECRET_KEY is shorter than 32 characters; use a long random value.")
    if len(set(key)) < 8 or _repeats_itself(key):
        # "aaaa...", "changemechangeme...": long enough, but no one drew them at random. (A
        # random hex key has 16 different characters at most: the bar stays well below.)
        raise ConfigurationError("SECRET_KEY does not look random (a few characters, or a word repeated); "
                                 "use python -c 'import secrets; print(secrets.token_urlsafe(48))'.")
    base_url = (settings.get("PORTAL_BASE_URL") or "").rstrip("/")
    if not base_url.lower().startswith("https://") or base_url.lower() == "https://127.0.0.1:5000":
        # Every link in every email is built on it: the default would send people to localhost.
        raise ConfigurationError(
            f"PORTAL_BASE_URL must be the portal's public https address (it is {base_url or 'unset'!r}); "
            "every link in every email starts with it.")
    if os.environ.get("PORTAL_FAKE_NOW"):
        # The tests' clock (portal/core/clock.py): left set, every release, reminder, expiry
        # and consent lapse would run by a frozen date.
        raise ConfigurationError("PORTAL_FAKE_NOW is set: it is for tests only; unset it.")
    for language in settings.get("LANGUAGES") or ():
        if language != settings.get("BABEL_DEFAULT_LOCALE") and not _catalogue_compiled(settings, language):
            # The .mo files are not in git (they are built from the .po): without them Babel
            # falls back to English without a word, and French readers get English pages
            # and emails (a deployment review found the README's steps never built them).
            raise ConfigurationError(
                f"the {language!r} translations are not compiled ({language}/LC_MESSAGES/messages.mo is "
                "missing under portal/translations); run `make translations` before starting.")


def _catalogue_compiled(settings: dict, language: str) -> bool:
    """Whether a compiled catalogue (.mo) for `language` is in one of Babel's directories."""
    directories = (settings.get("BABEL_TRANSLATION_DIRECTORIES") or "").split(";")
    return any((Path(directory) / language / "LC_MESSAGES" / "messages.mo").is_file()
               for directory in directories if directory)
