"""Django settings, all read from the environment.

DATABASE_URL        default: sqlite:///dunning.sqlite3 in the data directory
DUNNING_DATA_DIR    where the SQLite file, the demo's secret key and outgoing
                    mail files live (default: the working directory)
DUNNING_ENV         "production" turns off debug and demands a secret key
DUNNING_SECRET_KEY  required in production; elsewhere generated once and kept
DUNNING_ALLOWED_HOSTS  comma-separated, default "127.0.0.1,localhost"
TEST_DATABASE_URL   used instead of DATABASE_URL by the test suite
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import dj_database_url
import fontpkg_sarabun
from django.core.exceptions import ImproperlyConfigured

from dunning.files import write_private

DATA_DIR = Path(os.environ.get("DUNNING_DATA_DIR") or Path.cwd())
ENV = os.environ.get("DUNNING_ENV", "development")
PRODUCTION = ENV == "production"
TESTING = "pytest" in sys.modules


def _secret_key() -> str:
    if key := os.environ.get("DUNNING_SECRET_KEY"):
        return key
    if PRODUCTION:
        raise ImproperlyConfigured(
            "DUNNING_SECRET_KEY is not set. In production it must be set to a long random "
            'value, for example the output of: python -c "import secrets; '
            'print(secrets.token_urlsafe(50))"'
        )
    # Outside production a key is generated once and kept beside the data, so
    # sessions and signed links survive a restart of the demo.
    return kept_secret_key(DATA_DIR / ".dunning-secret-key")


def kept_secret_key(path: Path) -> str:
    """The key kept in `path`, generated and written there first if there is none.

    Processes started together on a fresh data directory (several workers) must
    all read one key, and none may read a half-written file: the key appears
    whole or not at all, and the first process to put it there wins
    (`files.write_private`).
    """
    if not path.exists():
        write_private(path, secrets.token_urlsafe(50), replace=False)
    return path.read_text().strip()


def _database() -> dj_database_url.DBConfig:
    url = os.environ.get("TEST_DATABASE_URL") if TESTING else None
    url = url or os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'dunning.sqlite3'}"
    if url.startswith("sqlite"):
        config = dj_database_url.parse(url)
        config["ENGINE"] = "dunning.sqlite"  # Django's backend, placeholders converted once
        config["OPTIONS"] = {  # type: ignore[typeddict-unknown-key]
            # WAL lets readers work while the one writer writes; IMMEDIATE takes
            # the write lock at BEGIN so two writers queue instead of failing
            # with "database is locked" half-way through a transaction.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        return config
    # Persistent connections: a new PostgreSQL backend per request costs ~6x
    # in throughput (shared/reference/stack.md, figure 8).
    return dj_database_url.parse(url, conn_max_age=600, conn_health_checks=True)


SECRET_KEY = _secret_key()
DEBUG = not PRODUCTION and os.environ.get("DUNNING_DEBUG", "1") == "1"
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("DUNNING_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
]
if TESTING:
    ALLOWED_HOSTS.append("testserver")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "dunning.ledger",
    "dunning.engine",
    "dunning.gateways",
    "dunning.web",
    "dunning.api",
    "dunning.cli",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "dunning.api.errors.JsonErrorsMiddleware",
    "dunning.api.idempotency.IdempotencyMiddleware",
]

ROOT_URLCONF = "dunning.urls"
WSGI_APPLICATION = "dunning.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Overrides of Django's admin templates (its Thai font), found before the admin's own.
        "DIRS": [Path(__file__).parent / "web" / "admin_templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("th", "ไทย")]
TIME_ZONE = "UTC"
# The admin writes times with their zone (dunning/formats): operators in Bangkok
# or New York must not read 18:30 UTC as their own.
FORMAT_MODULE_PATH = ["dunning.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# Sarabun (OFL) from its PyPI package: customer pages show Thai the same on
# every machine instead of depending on the fonts a server or browser has.
STATICFILES_DIRS = [("fonts", fontpkg_sarabun.ROOT / "files")]
# Static files are served from the app's packages (admin, API docs) without a
# collectstatic step, so `dunning serve` works straight after install.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# Outgoing messages.  Without an SMTP URL, email is written as .eml files to
# DUNNING_OUTBOX_DIR, so the demo works with nothing configured.
DUNNING_SMTP_URL = os.environ.get("DUNNING_SMTP_URL", "")
DUNNING_OUTBOX_DIR = Path(os.environ.get("DUNNING_OUTBOX_DIR") or DATA_DIR / "outbox")
DUNNING_FROM_EMAIL = os.environ.get("DUNNING_FROM_EMAIL", "billing@example.com")
DUNNING_COMPANY_NAME = os.environ.get("DUNNING_COMPANY_NAME", "Example Co., Ltd.")
DUNNING_SUPPORT_EMAIL = os.environ.get("DUNNING_SUPPORT_EMAIL", "support@example.com")
DUNNING_SUPPORT_PHONE = os.environ.get("DUNNING_SUPPORT_PHONE", "+66 2 123 4567")
DUNNING_PUBLIC_URL = os.environ.get("DUNNING_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

# Payment gateways.  DUNNING_GATEWAY names the adapter that charges saved
# payment methods: "stripe", "manual" (no charges), "demo" (`make demo`'s
# stand-in bank, refused in production) or "simulated" (tests and the
# simulator).  The Stripe API base is overridable so tests can point the
# official library at a loopback server.  Webhook secrets are comma-separated
# so a rolled secret keeps working while Stripe still signs with the old one.
DUNNING_GATEWAY = os.environ.get("DUNNING_GATEWAY", "manual")
DUNNING_STRIPE_API_KEY = os.environ.get("DUNNING_STRIPE_API_KEY", "")
DUNNING_STRIPE_API_BASE = os.environ.get("DUNNING_STRIPE_API_BASE", "https://api.stripe.com")
DUNNING_STRIPE_WEBHOOK_SECRET = [
    secret.strip()
    for secret in os.environ.get("DUNNING_STRIPE_WEBHOOK_SECRET", "").split(",")
    if secret.strip()
]

NINJA_PAGINATION_PER_PAGE = 50
NINJA_PAGINATION_MAX_PER_PAGE_SIZE = 500

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DUNNING_LOG_LEVEL", "INFO")},
    "loggers": {
        # ninja logs every validation error with the offending input; inputs can
        # hold personal data, so only warnings and above.
        "ninja": {"level": "WARNING"},
        # The stripe library logs every answer's body at DEBUG: PaymentIntents'
        # client secrets (enough to confirm a payment) and card holders' contact
        # details.  Its INFO lines (method, path, status) are all we let through.
        "stripe": {"level": "INFO"},
        "django.request": {"level": "ERROR"},
    },
}
