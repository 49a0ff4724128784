"""Layering rules that the code's reviewers check (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """What a module imports at run time (imports under `if TYPE_CHECKING:` are for the type checker only)."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for statement in node.body
        for inner in ast.walk(statement)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
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
        for folder in ("sync", "webhooks", "settings_ui", "bench", "sandbox")
        for path in (ROOT / folder).rglob("*.py")
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


# The layer of each package or top-level module of `sync/` (docs/architecture.md, "Layers"): a
# module imports only from lower layers or its own package; the two directions (3) never import
# each other. Top-level modules not listed (ids, net, json_values, ...) are leaves any layer may use.
LAYER = {"identity": 0, "crypto": 0, "transient": 0, "models": 1, "defaults": 1, "intercom": 2, "hull": 2,
         "synclog": 3, "mapping": 3, "work": 3, "legacy": 3, "incoming": 4, "outgoing": 4, "services": 5}
# Pure tables with no imports from `sync`, usable from any layer (the models' region choices).
LEAVES = {"sync.intercom.regions"}


def test_sync_packages_import_downwards_only_and_the_two_directions_never_each_other():
    wrong = set()
    for path in (ROOT / "sync").rglob("*.py"):
        rel = path.relative_to(ROOT)
        if "migrations" in rel.parts:
            continue
        source = rel.parts[1] if len(rel.parts) >= 3 else path.stem
        if source not in LAYER:
            continue
        for module in imported_modules(path):
            if not module.startswith("sync.") or module in LEAVES:
                continue
            target = module.split(".")[1]
            if target == source or target not in LAYER:
                continue
            if LAYER[target] >= LAYER[source]:
                wrong.add((str(rel), target))
    assert wrong == set()


def test_the_hull_package_is_the_hull_client_only():
    """Receiving notifications, exports, flow control and segments are outgoing services, not the client."""
    modules = sorted(p.stem for p in (ROOT / "sync" / "hull").glob("*.py") if p.stem != "__init__")
    assert modules == ["client", "firehose", "messages"]


def test_the_documents_the_code_cites_are_in_the_repository():
    """A comment citing a decision points at docs/ in this repository, and the page exists."""
    import re

    cited = re.compile(r"\b(?:DECISIONS|ARCHITECTURE|STYLE)\.md\b|docs/[a-z-]+\.md")
    dangling = sorted(
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for folder in ("sync", "webhooks", "settings_ui", "sandbox", "connector_site", "bench", "tests")
        for path in (ROOT / folder).rglob("*.py")
        for match in cited.finditer(path.read_text())
        if not (match.group(0).startswith("docs/") and (ROOT / match.group(0)).is_file())
    )
    assert dangling == []
