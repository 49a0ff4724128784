"""Settings for the test suite: the production settings with the sandbox on and tasks run inline."""

import os

# The demo's var/local.env (written by make run) must not leak into the tests' settings.
os.environ.setdefault("CONNECTOR_ENV_FILE", os.devnull)
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "aW50ZXJjb20tY29ubmVjdG9yLXRlc3QtZmVybmV0LWs=")
os.environ.setdefault("SANDBOX_ENABLED", "1")
os.environ.setdefault("INTERCOM_CLIENT_ID", "sandbox-client-id")
os.environ.setdefault("INTERCOM_CLIENT_SECRET", "sandbox-client-secret")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
# With REDIS_URL the throttle counters outlive each test's transaction; tests of the limit set their own rate.
os.environ.setdefault("PUBLIC_ENDPOINT_RATE", "100000/minute")
os.environ.setdefault("METRICS_PUBLIC", "1")  # the metrics tests scrape without a token; security tests turn it off
os.environ.setdefault("PUBLIC_ENDPOINT_FAILURE_RATE", "100000/minute")
# Tests edit connectors with queryset updates (no signal): no cross-request connector cache.
os.environ.setdefault("CONNECTOR_LOOKUP_TTL", "0")

from connector_site.settings import *  # noqa: E402,F403

Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405 - django-q2 runs tasks inline in unit tests
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
