#!/usr/bin/env bash
# Starts (or stops) a throw-away PostgreSQL and Redis on loopback for the scale-out tests.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${SERVICES_DIR:-/tmp/connector-services}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

case "${1:-start}" in
  start)
    mkdir -p "$DATA"
    chown postgres "$DATA" 2>/dev/null || true
    if [ ! -f "$DATA/pg/PG_VERSION" ]; then
      su postgres -c "$PGBIN/initdb -D $DATA/pg -A trust -U postgres" >/dev/null
    fi
    # Idempotent: a second `start` leaves running services alone.
    if ! su postgres -c "$PGBIN/pg_ctl -D $DATA/pg status" >/dev/null 2>&1; then
      su postgres -c "$PGBIN/pg_ctl -D $DATA/pg -o '-c listen_addresses=127.0.0.1 -p 5432 -c max_connections=200 -k /tmp' -l $DATA/pg.log -w start" >/dev/null
    fi
    psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_roles WHERE rolname='connector'" | grep -q 1 \
      || psql -h 127.0.0.1 -U postgres -c "CREATE ROLE connector LOGIN SUPERUSER PASSWORD 'connector'" >/dev/null
    psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='connector'" | grep -q 1 \
      || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE connector OWNER connector" >/dev/null
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 \
      || redis-server --port 6379 --bind 127.0.0.1 --daemonize yes --save '' --appendonly no >/dev/null
    ;;
  stop)
    su postgres -c "$PGBIN/pg_ctl -D $DATA/pg -m fast stop" >/dev/null 2>&1 || true
    redis-cli -h 127.0.0.1 -p 6379 shutdown nosave >/dev/null 2>&1 || true
    ;;
esac
