"""Issue 13 item 1: a signed Hull notification names its public-key URL; the check must agree with
the transport about the host, or anyone signs notifications with a key served from anywhere.

Each attack posts a notification signed by the attacker's own key and names a key URL that an
urlsplit-based check reads as `*.hullapp.io`; the recording transport answers every connection
with the attacker's key. Refused means: 401, nothing stored, and no connection at all.
"""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sync.hull import client as hull_client
from sync.models import HullNotification
from tests.plugins.hull_sandbox import make_user_update

ATTACKS = [
    # From the issue: urllib3 ends the authority at the backslash.
    "https://127.0.0.1\\.hullapp.io/key",
    "https://evil.example\\@x.hullapp.io/key",
    "https://evil.example:443\\@a.hullapp.io/key",
    # Userinfo, ports, escapes, IP literals, look-alikes.
    "https://evil.example@x.hullapp.io/key",
    "https://x.hullapp.io:8443/key",
    "https://x.hullapp.io:443/key",
    "https://%65vil.hullapp.io/key",
    "https://x.hullapp%2eio/key",
    "https://127.0.0.1%2f.hullapp.io/key",
    "https://x.hullapp.io%2f@evil.example/key",
    "https://[::1]/.hullapp.io/key",
    "https://[::ffff:127.0.0.1]/key",
    "https://2130706433/key",
    "https://0x7f.1/key",
    "https://x.hullapp.io./key",
    "https://x.hullapp\u3002io/key",  # ideographic full stop: IDNA maps it to "."
    "https://x.hullapp\uff0eio/key",
    "https://x.hullapp.io\u0000.evil.example/key",
    "https://x.hullapp.io\t/key",
    "https://evil-hullapp.io/key",
    "https://hullapp.io.evil.example/key",
    "http://x.hullapp.io/key",
    "HTTPS://x.hullapp.io/key#@evil.example",
    "https://x.hullapp.io#@evil.example/key",
    "https:/\\evil.example/x.hullapp.io",
    "https:evil.example/.hullapp.io",
    "//evil.example/.hullapp.io",
]


@pytest.fixture
def attacker_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _post_signed(client, connector, key, key_url: str):
    payload = make_user_update(connector, [{"email": "forged@evil.example"}])
    del payload["configuration"]["secret"]
    signature = jwt.encode({"jti": payload["notification_id"], "iat": int(time.time())}, key, algorithm="RS256")
    return client.post(
        f"/hull/{connector.slug}/smart-notifier",
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_X_HULL_SMART_NOTIFIER="1",
        HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE=signature,
        HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE_VERSION="v1",
        HTTP_X_HULL_SMART_NOTIFIER_SIGNATURE_PUBLIC_KEY_URL=key_url,
    )


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    hull_client._public_keys.clear()
    yield
    hull_client._public_keys.clear()


@pytest.mark.parametrize("key_url", ATTACKS)
def test_a_key_url_the_transport_reads_differently_is_refused_before_any_connection(
    client, connector, transport, attacker_key, key_url
):
    transport.answer = lambda contact: (200, {"Content-Type": "text/plain"}, _pem(attacker_key))
    try:
        response = _post_signed(client, connector, attacker_key, key_url)
    except UnicodeEncodeError:  # the test client itself can't put some of these in a header
        pytest.skip("not expressible as a header")
    assert response.status_code == 401, (key_url, response.status_code, transport.hosts)
    assert transport.contacts == [], f"{key_url} made the transport contact {transport.hosts}"
    assert HullNotification.objects.count() == 0


def test_the_genuine_key_host_is_contacted_exactly_as_named(client, connector, transport, attacker_key, enqueued_noop):
    """The allow-list still lets Hull's own key host through: it is the host the pool connects to."""
    transport.answer = lambda contact: (200, {"Content-Type": "text/plain"}, _pem(attacker_key))
    response = _post_signed(client, connector, attacker_key, "https://acme.hullapp.io/api/v1/_keys/k1")
    assert response.status_code == 200
    [contact] = transport.contacts
    assert (contact.scheme, contact.host, contact.port, contact.method) == ("https", "acme.hullapp.io", 443, "POST")
    assert contact.url == "/api/v1/_keys/k1"


def test_a_redirect_from_the_key_host_is_not_followed(client, connector, transport, attacker_key):
    def answer(contact):
        if contact.host == "keys.hullapp.io":
            return 307, {"Location": "https://127.0.0.1/key"}, b""
        return 200, {"Content-Type": "text/plain"}, _pem(attacker_key)

    transport.answer = answer
    response = _post_signed(client, connector, attacker_key, "https://keys.hullapp.io/k")
    assert response.status_code == 401
    assert transport.hosts == ["keys.hullapp.io"]
    assert HullNotification.objects.count() == 0


@pytest.fixture
def enqueued_noop(monkeypatch):
    """The notification is stored and its task enqueued; the task itself is not the subject here."""
    monkeypatch.setattr("django.db.transaction.on_commit", lambda func, using=None, robust=False: None)
