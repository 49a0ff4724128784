"""`manage.py import_legacy_settings`: happy path, dry run, and its failure messages."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from sync.models import FieldMapping

LEGACY_FILE = str(Path(__file__).resolve().parent / "fixtures" / "legacy" / "settings.json")


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_legacy_settings", *args, stdout=out)
    return out.getvalue()


def test_the_command_imports_and_prints_what_it_mapped_and_what_it_could_not(connector):
    output = run("--connector", "acme", "--file", LEGACY_FILE)
    assert "Mapped: " in output and "Not mapped: " in output
    assert "[outgoing user mapping] plan_name -> plan  =>  plan_name -> plan" in output
    assert "[incoming mapping] session_count -> intercom/session_count (Intercom's API 2.x no longer returns this field)" in output
    assert "Imported into acme:" in output
    assert FieldMapping.objects.filter(connector=connector, direction="outgoing").count() == 10


def test_the_dry_run_prints_the_same_report_and_changes_nothing(connector):
    output = run("--connector", "acme", "--file", LEGACY_FILE, "--dry-run")
    assert output.startswith("Would map: ")
    assert "Dry run: nothing was changed." in output
    assert not FieldMapping.objects.filter(connector=connector, direction="outgoing").exists()


def test_an_unknown_connector_is_a_clear_error(db):
    with pytest.raises(CommandError, match="No connector with slug 'nope'"):
        run("--connector", "nope", "--file", LEGACY_FILE)


def test_a_missing_file_is_a_clear_error(connector, tmp_path):
    with pytest.raises(CommandError, match="Cannot read the legacy settings: no such file"):
        run("--connector", "acme", "--file", str(tmp_path / "missing.json"))


def test_a_file_that_is_not_json_is_a_clear_error(connector, tmp_path):
    bad = tmp_path / "settings.json"
    bad.write_text("private_settings: yes")
    with pytest.raises(CommandError, match="is not JSON"):
        run("--connector", "acme", "--file", str(bad))
