"""Start Django for a benchmark run in this process: the test settings on a temporary SQLite file.

The bench scripts run as `python bench/<name>.py`, so this module is imported from the scripts'
own folder. DATABASE_URL is kept when it already points at PostgreSQL and `keep_postgres` is set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_start(db_path: str, *, keep_postgres: bool = False, migrate: bool = False) -> None:
    """`django.setup()` with warnings-only logging; `migrate` also creates the tables and the cache table."""
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "connector_site.settings_test"
    if not (keep_postgres and os.environ.get("DATABASE_URL", "").startswith("postgres")):
        os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("createcachetable", verbosity=0)
