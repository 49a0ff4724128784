"""Delivery ids as stored keys: distinct ids never collide (issue 13 item 6).

A notification or webhook id is the replay key (a unique column of 128 characters). Cutting a long
id made two ids that differ after character 128 one delivery, and `str()` made 777 and "777" one.
A short string is kept as it is (readable in the admin); anything else is typed and, when long,
hashed, under a "~" prefix no kept string can have.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

MAX_KEY = 128
_MARK = "~"


def delivery_key(value: Any) -> str:
    """The stored, unique form of a delivery id: injective on strings, numbers, booleans, lists..."""
    if isinstance(value, str) and len(value) <= MAX_KEY and not value.startswith(_MARK):
        return value
    if isinstance(value, str):
        return f"{_MARK}sha256:" + hashlib.sha256(("str:" + value).encode("utf-8", "surrogatepass")).hexdigest()
    kind = "bool" if isinstance(value, bool) else type(value).__name__
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    typed = f"{_MARK}{kind}:{text}"
    if len(typed) <= MAX_KEY:
        return typed
    return f"{_MARK}sha256:" + hashlib.sha256(f"{kind}:{text}".encode("utf-8", "surrogatepass")).hexdigest()
