"""Secrets at rest: a model field that stores Fernet tokens and gives back plain text.

Keys come from FIELD_ENCRYPTION_KEY (comma-separated, newest first, so keys can be rotated);
in DEBUG without a key, one is derived from SECRET_KEY so the demo needs no set-up.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

PREFIX = "fernet:"


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        derived = base64.urlsafe_b64encode(hashlib.sha256(("field-encryption:" + secret_key).encode()).digest())
        keys = (derived.decode(),)
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(plain: str) -> str:
    return PREFIX + fernet().encrypt(plain.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise ValueError("Stored secret is not an encrypted token.")
    try:
        return fernet().decrypt(stored[len(PREFIX):].encode()).decode()
    except InvalidToken as exc:
        raise ValueError("Stored secret cannot be decrypted with the configured FIELD_ENCRYPTION_KEY.") from exc


class EncryptedTextField(models.TextField):
    """Holds a secret encrypted in the column; Python code sees the plain string ("" when unset)."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str:
        if not value:
            return ""
        return decrypt(value)

    def to_python(self, value: Any) -> str:
        if not value:
            return ""
        if isinstance(value, str) and value.startswith(PREFIX):
            return decrypt(value)
        return str(value)

    def get_prep_value(self, value: Any) -> str:
        if not value:
            return ""
        return encrypt(str(value))
