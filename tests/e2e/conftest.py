"""The end-to-end tests' one fixture: a connector on the sandboxes of a stack (tests/e2e/support.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.support import Site, make_site


@pytest.fixture
def stack_site(transactional_db: Any) -> Callable[..., Site]:
    """`stack_site(slug, hull_id=..., segment=..., **connector_settings)`: the connector, committed
    (the stack's processes read it through their own connections)."""
    return make_site
