"""Settings for the Intercom connector, read from the environment (12-factor).

Embedded default: SQLite, django-q2's ORM broker, the database cache, the sandbox on when
DEBUG is. Scale-out: DATABASE_URL (PostgreSQL) and REDIS_URL (broker, cache, rate budget).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def load_local_env(path: Path) -> None:
    """The demo's settings file, written by `make run` (scripts/run.sh), so a `manage.py` command typed in
    another terminal talks to the same database with the same settings. The environment wins over
    the file; a deployment has no such file and sets its environment instead."""
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name and not name.startswith("#"):
            os.environ.setdefault(name.strip(), value.strip())


load_local_env(Path(os.environ.get("CONNECTOR_ENV_FILE") or BASE_DIR / "var" / "local.env"))

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105 - development only

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# Where this service is reachable from Hull and Intercom (webhook URLs shown in the admin).
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://localhost:8000").rstrip("/")

# Fernet key(s) for secrets at rest, comma-separated, newest first (rotation: prepend a key).
# In development a key is derived from SECRET_KEY so the demo needs no set-up.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEY")
if not FIELD_ENCRYPTION_KEYS and not DEBUG:
    raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY must be set when DJANGO_DEBUG is off.")

INTERCOM_CLIENT_ID = os.environ.get("INTERCOM_CLIENT_ID", "")
INTERCOM_CLIENT_SECRET = os.environ.get("INTERCOM_CLIENT_SECRET", "")
# Each connector's Intercom host comes from its region (sync/intercom/regions.py: US, EU, AU).
# Another host (a proxy, a test double) only by deployment: this override applies to every
# connector, API calls and the OAuth token exchange alike. Never a field in the admin.
INTERCOM_API_BASE_OVERRIDE = os.environ.get("INTERCOM_API_BASE_OVERRIDE", "").rstrip("/")
# The OAuth consent page's base (".../oauth" is added); blank: the region's own app host.
INTERCOM_OAUTH_BASE = os.environ.get("INTERCOM_OAUTH_BASE", "").rstrip("/")

# Hull organizations are bare host names under these domains (acme.hullapp.io); the REST API is
# https://<organization>/api/v1 and the firehose https://firehose.<domain>. The overrides send
# every connector's Hull calls elsewhere (a proxy); the demo uses the sandbox switch instead.
HULL_ORGANIZATION_DOMAINS = env_list("HULL_ORGANIZATION_DOMAINS", "hullapp.io,hullbeta.io")
HULL_API_BASE_OVERRIDE = os.environ.get("HULL_API_BASE_OVERRIDE", "").rstrip("/")
HULL_FIREHOSE_URL_OVERRIDE = os.environ.get("HULL_FIREHOSE_URL_OVERRIDE", "").rstrip("/")
# Export files (/batch): any public https host by default; a list narrows it (suffixes).
HULL_EXPORT_HOSTS = env_list("HULL_EXPORT_HOSTS")
HULL_EXPORT_DEADLINE_SECONDS = int(os.environ.get("HULL_EXPORT_DEADLINE_SECONDS", "900"))
HULL_EXPORT_MAX_LINE_BYTES = int(os.environ.get("HULL_EXPORT_MAX_LINE_BYTES", str(4 * 1024 * 1024)))

# /metrics: scrapers send `Authorization: Bearer <METRICS_TOKEN>`. Without a token the page is
# served only when METRICS_PUBLIC is on (default: in debug); otherwise it answers 403.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_PUBLIC = env_bool("METRICS_PUBLIC", DEBUG)

# Alert digests to connector editors (sync/alerts.py) use Django's mail settings.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "intercom-connector@localhost")

# Hosts Hull may point us to for its notification-signing public keys (no SSRF).
HULL_PUBLIC_KEY_HOSTS = env_list("HULL_PUBLIC_KEY_HOSTS", "hullapp.io,hullbeta.io")

# The stand-ins of Intercom and Hull, served under /sandbox/. Never on in production.
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", DEBUG)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_q",
    "social_django",
    "sync",
    "webhooks",
    "settings_ui",
]
if SANDBOX_ENABLED:
    INSTALLED_APPS += ["sandbox.intercom", "sandbox.hull"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "connector_site.urls"
WSGI_APPLICATION = "connector_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

if not os.environ.get("DATABASE_URL"):
    (BASE_DIR / "var").mkdir(exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL + a busy timeout let the web process and the worker share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    # Connections are closed after each request or task (0), except in the web process
    # (connector_site/wsgi.py sets SQLITE_CONN_MAX_AGE): each of its threads keeps its connection,
    # since opening and closing the file around every request was half of a webhook's CPU
    # (bench/incoming.py, docs/receive-path.md).
    DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("SQLITE_CONN_MAX_AGE", "0"))

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES: dict[str, dict[str, Any]] = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "connector_cache"}}
# The public endpoints' throttle counters never touch the database (a flood of failed attempts must
# not become a flood of writes): Redis when there is one, shared by every web process; otherwise
# each process counts on its own, in memory.
if REDIS_URL:
    CACHES["throttle"] = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "throttle"}
else:
    CACHES["throttle"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle", "OPTIONS": {"MAX_ENTRIES": 100_000}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
FORMS_URLFIELD_ASSUME_HTTPS = True  # Django 6 default, opted into now
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Deliveries and notifications still open this long after they arrived are enqueued again
# (a worker died holding their task); see sync.services.replay.stale_work_requeue.
STALE_WORK_AFTER_SECONDS = int(os.environ.get("STALE_WORK_AFTER_SECONDS", "600"))
# How long a try owns its unit of work without a heartbeat (sync/work.py, docs/lifecycle.md). Shorter
# than Q_CLUSTER["retry"], so django-q2's redelivery of a dead worker's task can take the unit over.
WORK_LEASE_SECONDS = int(os.environ.get("WORK_LEASE_SECONDS", "150"))

# Hull side limits: notification body and export file sizes, and the flow-control thresholds (a
# deeper queue of pending notifications, or fewer Intercom calls left, answers Hull `retry`).
HULL_MAX_NOTIFICATION_BYTES = int(os.environ.get("HULL_MAX_NOTIFICATION_BYTES", str(64 * 1024 * 1024)))
HULL_MAX_EXPORT_BYTES = int(os.environ.get("HULL_MAX_EXPORT_BYTES", str(512 * 1024 * 1024)))
# Seconds a web process reuses a connector looked up by URL slug (webhooks/connector_lookup.py).
CONNECTOR_LOOKUP_TTL = float(os.environ.get("CONNECTOR_LOOKUP_TTL", "5"))
HULL_MAX_PENDING_NOTIFICATIONS = int(os.environ.get("HULL_MAX_PENDING_NOTIFICATIONS", "50"))
HULL_FLOW_CONTROL_BUDGET_RESERVE = int(os.environ.get("HULL_FLOW_CONTROL_BUDGET_RESERVE", "10"))
# Messages of one notification synced at once (threads sharing the workspace's rate budget).
OUTGOING_CONCURRENCY = int(os.environ.get("OUTGOING_CONCURRENCY", "32"))

# Payloads bigger than this are refused with 413 before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("MAX_REQUEST_BYTES", str(10 * 1024 * 1024)))

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_THROTTLE_RATES": {
        "public_endpoint": os.environ.get("PUBLIC_ENDPOINT_RATE", "600/minute"),
        # Failed attempts (401, 404, 400, 413) per source address, checked before the body is read.
        "public_endpoint_failures": os.environ.get("PUBLIC_ENDPOINT_FAILURE_RATE", "30/minute"),
    },
    # X-Forwarded-For is trusted only behind a known number of proxies (env NUM_PROXIES); with 0
    # the client address is REMOTE_ADDR, so a caller cannot pick its own throttle bucket.
    "NUM_PROXIES": int(os.environ.get("NUM_PROXIES") or 0),
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Intercom connector endpoints",
    "DESCRIPTION": "Endpoints called by Hull and by Intercom.",
    "VERSION": "1.0.0",
}

# django-q2: one short task per unit of work; long work is split into pages (docs/conventions.md "django-q2").
Q_CLUSTER = {
    "name": "connector",
    "workers": int(os.environ.get("Q_WORKERS", "2")),
    "timeout": 120,
    "retry": 180,
    "max_attempts": 3,
    "ack_failures": False,
    "catch_up": False,
    "save_limit": 500,
    "queue_limit": 50,
    "poll": 0.5,
    "sync": env_bool("Q_SYNC", False),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# Intercom OAuth through social-auth (settings_ui.oauth.IntercomOAuth2).
AUTHENTICATION_BACKENDS = [
    "settings_ui.oauth.IntercomOAuth2",
    "django.contrib.auth.backends.ModelBackend",
]
SOCIAL_AUTH_INTERCOM_KEY = INTERCOM_CLIENT_ID
SOCIAL_AUTH_INTERCOM_SECRET = INTERCOM_CLIENT_SECRET
SOCIAL_AUTH_JSONFIELD_ENABLED = True
SOCIAL_AUTH_LOGIN_REDIRECT_URL = "/admin/"
SOCIAL_AUTH_RAISE_EXCEPTIONS = False
SOCIAL_AUTH_PIPELINE = [
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_uid",
    "settings_ui.oauth.store_token_on_connector",
]

LOGIN_URL = "/admin/login/"

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    X_FRAME_OPTIONS = "DENY"

# One line per event: every logger writes through the one console handler. Django's own default
# config gives "django" a second (plain) console handler in debug and lets it propagate to root too,
# which printed each of its lines twice; "django" and "django.server" are routed here instead.
# LOG_FORMAT=json (default) for log pipelines, LOG_FORMAT=plain for reading in a terminal.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "json").strip().lower()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "sync.logging.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    # The filter masks query strings and credentials in every record, Django's own included.
    "filters": {"redact": {"()": "sync.logging.RedactingFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain" if LOG_FORMAT == "plain" else "json",
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
    },
}
