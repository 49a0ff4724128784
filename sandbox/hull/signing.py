"""Signed notifications (docs/hull-protocol.md#notification-signatures): an RS256 key pair for the stand-in.

The notifier signs `{jti: notification_id, iat}`; the connector POSTs the signature to the
public-key URL (`/api/v1/_keys/<kid>` here) and gets the PEM back.
"""

from __future__ import annotations

import threading
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

_key: rsa.RSAPrivateKey | None = None
_lock = threading.Lock()


def private_key() -> rsa.RSAPrivateKey:
    global _key
    with _lock:
        if _key is None:  # generating is slow: one per process
            _key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _key


def public_key_pem() -> str:
    return private_key().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def sign_notification(notification_id: str) -> str:
    return jwt.encode({"jti": notification_id, "iat": int(time.time())}, private_key(), algorithm="RS256")
