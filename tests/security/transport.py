"""A recording transport under `requests`: what the connection pool actually contacts.

`responses` and mocks of `requests.post` sit above the URL parser, so they can't see a parser
differential. This stands in for urllib3's `HTTPConnectionPool.urlopen`, the last step before a
socket: each call records the pool's scheme, host and port (where the bytes would go), the
TLS server name, and the request line, then answers from a script.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from urllib3 import HTTPResponse
from urllib3.connectionpool import HTTPConnectionPool


@dataclass
class Contact:
    scheme: str
    host: str
    port: int | None
    url: str
    method: str
    server_hostname: str | None
    headers: dict[str, str]
    body: bytes = b""


Answer = tuple[int, dict[str, str], bytes]


@dataclass
class RecordingTransport:
    contacts: list[Contact] = field(default_factory=list)
    answer: Callable[[Contact], Answer] = lambda contact: (200, {}, b"")

    @property
    def hosts(self) -> list[str]:
        return [c.host for c in self.contacts]


@pytest.fixture
def transport(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingTransport]:
    recorder = RecordingTransport()

    def urlopen(pool: HTTPConnectionPool, method: str, url: str, body: Any = None, headers: Any = None, **kwargs: Any) -> HTTPResponse:
        contact = Contact(
            scheme=pool.scheme,
            host=pool.host,
            port=pool.port,
            url=url,
            method=method,
            server_hostname=pool.conn_kw.get("server_hostname") or getattr(pool, "server_hostname", None),
            headers=dict(headers or {}),
            body=body.encode() if isinstance(body, str) else (body if isinstance(body, bytes) else b""),
        )
        recorder.contacts.append(contact)
        status, answer_headers, payload = recorder.answer(contact)
        return HTTPResponse(
            body=io.BytesIO(payload), headers=answer_headers, status=status, preload_content=False, decode_content=False,
            request_method=method, request_url=url,
        )

    monkeypatch.setattr(HTTPConnectionPool, "urlopen", urlopen)
    yield recorder


def django_answer(contact: Contact) -> Answer:
    """Answer a call to http://testserver/... with this deployment's own views (the demo's sandboxes)."""
    from django.test import Client

    headers = {k: v for k, v in contact.headers.items() if k.lower() not in ("host", "content-length")}
    response = Client().generic(
        contact.method, contact.url, data=contact.body, content_type=headers.pop("Content-Type", "application/json"),
        headers=headers,
    )
    return response.status_code, {k: v for k, v in response.items()}, response.content
