"""Log output as an operator reads it: one line per event, JSON unless LOG_FORMAT=plain.

Runs a fresh interpreter with the real settings (not the test settings), as `make run` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import django, logging
django.setup()
import sync.services.ops as ops
from sync.models import SyncLog
# The daily prune's line, with the verbose-name keys the real service returns (lazy strings).
ops.sync_logs_prune = lambda **kw: {SyncLog._meta.verbose_name_plural: 3}
from sync.tasks import prune_sync_logs
prune_sync_logs()
logging.getLogger("django.request").warning("Not Found: /nowhere")
logging.getLogger("sync.anything").info("sync.event", extra={"n": 1})
"""


def run(**env: str) -> list[str]:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "connector_site.settings", "DJANGO_DEBUG": "1", **env}
    environment.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]


def test_each_event_is_one_json_line_and_the_prune_line_formats():
    lines = run(LOG_FORMAT="json")
    parsed = [json.loads(line) for line in lines]  # every line is JSON: no plain twin, no formatting error
    messages = [entry["message"] for entry in parsed]
    assert messages.count("Not Found: /nowhere") == 1
    assert messages.count("sync.event") == 1
    prune = [entry for entry in parsed if entry["message"] == "task.prune.done"]
    assert len(prune) == 1 and list(prune[0]["deleted"].values()) == [3]


def test_plain_format_when_configured():
    lines = run(LOG_FORMAT="plain")
    assert len([line for line in lines if "Not Found: /nowhere" in line]) == 1
    assert not any(line.startswith("{") for line in lines)
