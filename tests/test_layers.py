"""Layering rules that the code's reviewers check (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_benchmarks_import_nothing_from_the_tests():
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m == "tests" or m.startswith("tests."))
        for path in (ROOT / "bench").rglob("*.py")
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_task_names_are_written_once():
    """Every enqueue and schedule names its task through sync/work.py's constants, not a string literal."""
    literal = '"sync.tasks.'
    users = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "sync").rglob("*.py")
        if literal in path.read_text() and path.name not in ("work.py", "tasks.py") and "migrations" not in path.parts
    )
    assert users == []


def test_reasons_are_members_of_the_one_enum():
    """Skip/halt/error reasons of both directions are `SyncLog.Reason` members, never ad-hoc strings."""
    import re

    literal = re.compile(r"""\breason\s*=\s*["'][a-z_]+["']""")
    offenders = sorted(
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in (ROOT / "sync").rglob("*.py")
        if "migrations" not in path.parts
        for match in literal.finditer(path.read_text())
    )
    assert offenders == []


def test_the_outgoing_skip_reasons_are_the_sync_log_reasons():
    from sync.models import SyncLog
    from sync.outgoing.routing import SKIP_MESSAGES, SkipReason

    assert SkipReason is SyncLog.Reason
    assert set(SKIP_MESSAGES) <= set(SyncLog.Reason.values)


# Imports against the layer order that exist because a module still lives in the wrong package;
# each goes away with the move named (docs/architecture.md, "Known exceptions"). Nothing may be added.
KNOWN_EXCEPTIONS = {
    ("sync/hull/exports.py", "outgoing"),  # exports are an outgoing service: move to sync/outgoing/
    ("sync/hull/exports.py", "work"),  # (same move)
    ("sync/hull/notifications.py", "work"),  # the notification receive is an outgoing service: same
    ("sync/hull/flow_control.py", "intercom"),  # flow control is an outgoing service: same
    ("sync/hull/status.py", "services"),  # Hull's status report is a service: move to sync/services/
    ("sync/outgoing/contacts.py", "incoming"),  # legacy mode serves both directions: move legacy.py up
}
LAYER = {"models": 0, "crypto": 0, "identity": 0, "transient": 0, "defaults": 0, "intercom": 1, "hull": 1,
         "synclog": 2, "mapping": 2, "work": 2, "incoming": 3, "outgoing": 3, "services": 4}


def test_sync_packages_import_downwards_only_and_the_two_directions_never_each_other():
    wrong = set()
    for path in (ROOT / "sync").rglob("*.py"):
        rel = path.relative_to(ROOT)
        if "migrations" in rel.parts or len(rel.parts) < 3 or rel.parts[1] not in LAYER:
            continue
        source = rel.parts[1]
        for module in imported_modules(path):
            if not module.startswith("sync."):
                continue
            target = module.split(".")[1]
            if target == source or target not in LAYER:
                continue
            if LAYER[target] >= LAYER[source]:
                wrong.add((str(rel), target))
    assert wrong - KNOWN_EXCEPTIONS == set()
