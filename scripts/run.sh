#!/usr/bin/env bash
# Runs the demo: web server + django-q2 worker + sandboxes, on SQLite, with a demo connector.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

export DJANGO_DEBUG=${DJANGO_DEBUG:-1}
export SANDBOX_ENABLED=${SANDBOX_ENABLED:-1}
PORT=${PORT:-8000}
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}

# The demo's settings, for `.venv/bin/python manage.py ...` typed in another terminal (read by
# connector_site/settings.py; the environment still wins over it).
ENV_FILE=${CONNECTOR_ENV_FILE:-var/local.env}
mkdir -p "$(dirname "$ENV_FILE")"
{
  echo "# Written by scripts/run.sh (make run) for manage.py commands run by hand. Not for production."
  echo "DJANGO_DEBUG=$DJANGO_DEBUG"
  echo "SANDBOX_ENABLED=$SANDBOX_ENABLED"
  echo "PUBLIC_BASE_URL=$PUBLIC_BASE_URL"
  if [ -n "${DATABASE_URL:-}" ]; then echo "DATABASE_URL=$DATABASE_URL"; fi
} > "$ENV_FILE"

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py createcachetable
.venv/bin/python manage.py seed_demo --base-url "$PUBLIC_BASE_URL"
.venv/bin/python manage.py setup_schedules

.venv/bin/python manage.py qcluster &
worker=$!
trap 'kill $worker 2>/dev/null || true' EXIT INT TERM
.venv/bin/python manage.py runserver "127.0.0.1:$PORT"
