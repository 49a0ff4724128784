"""Settings for the Intercom connector, read from the environment (12-factor).

Embedded default: SQLite, django-q2's ORM broker, the database cache, the sandbox on when
DEBUG is. Scale-out: DATABASE_URL (PostgreSQL) and REDIS_URL (broker, cache, rate budget).
"""

from __future__ import annotations

import os
from pathlib import Path

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
INTERCOM_API_BASE = os.environ.get("INTERCOM_API_BASE", "https://api.intercom.io").rstrip("/")
INTERCOM_OAUTH_BASE = os.environ.get("INTERCOM_OAUTH_BASE", "https://app.intercom.com").rstrip("/")

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
    DATABASES["default"]["CONN_MAX_AGE"] = 0

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "connector_cache"}}

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

# Hull side limits: notification body and export file sizes, and the flow-control thresholds (a
# deeper queue of pending notifications, or fewer Intercom calls left, answers Hull `retry`).
HULL_MAX_NOTIFICATION_BYTES = int(os.environ.get("HULL_MAX_NOTIFICATION_BYTES", str(64 * 1024 * 1024)))
HULL_MAX_EXPORT_BYTES = int(os.environ.get("HULL_MAX_EXPORT_BYTES", str(512 * 1024 * 1024)))
HULL_MAX_PENDING_NOTIFICATIONS = int(os.environ.get("HULL_MAX_PENDING_NOTIFICATIONS", "50"))
HULL_FLOW_CONTROL_BUDGET_RESERVE = int(os.environ.get("HULL_FLOW_CONTROL_BUDGET_RESERVE", "10"))
# Messages of one notification synced at once (threads sharing the workspace's rate budget).
OUTGOING_CONCURRENCY = int(os.environ.get("OUTGOING_CONCURRENCY", "4"))

# Payloads bigger than this are refused with 413 before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("MAX_REQUEST_BYTES", str(10 * 1024 * 1024)))

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_THROTTLE_RATES": {"public_endpoint": os.environ.get("PUBLIC_ENDPOINT_RATE", "600/minute")},
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Intercom connector endpoints",
    "DESCRIPTION": "Endpoints called by Hull and by Intercom.",
    "VERSION": "1.0.0",
}

# django-q2: one short task per unit of work; long work is split into pages (STYLE.md).
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "sync.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
