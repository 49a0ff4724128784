#!/usr/bin/env bash
# Idempotent set-up on a fresh machine with only Python 3.11: a virtualenv with the pinned
# dependencies and, when we are root, the Debian packages the browser tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -c constraints.txt -e ".[dev]"
  rm -f .venv/.installed-* && touch "$stamp"
fi

# Debian's Chromium for the admin and snippet browser tests (Playwright drives it; no download).
if [ "${SKIP_APT:-0}" != "1" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: chromium is not installed; browser tests will be skipped (apt-get install chromium)" >&2
  fi
fi
