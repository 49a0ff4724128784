"""The sandbox's clock: real time, shifted or frozen by tests (search lag, windows, scroll expiry)."""

from __future__ import annotations

import time

_offset = 0.0
_frozen: float | None = None


def now() -> float:
    """Unix seconds as the sandbox sees them."""
    return _frozen if _frozen is not None else time.time() + _offset


def advance(seconds: float) -> None:
    """Move sandbox time forward (works frozen or not)."""
    global _offset, _frozen
    if _frozen is not None:
        _frozen += seconds
    else:
        _offset += seconds


def freeze(at: float | None = None) -> None:
    global _frozen
    _frozen = time.time() + _offset if at is None else at


def reset() -> None:
    global _offset, _frozen
    _offset, _frozen = 0.0, None
