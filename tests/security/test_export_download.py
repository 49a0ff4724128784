"""Issue 13 item 5: export downloads go to public https hosts only, to the address that was
checked (no DNS rebinding), never off the allowed hosts by a redirect, within a deadline and a
line length; each failure ends the export failed with the reason (replayable), never processing.

DNS is scripted (socket.getaddrinfo) and the recording transport shows where the connection
pool connects: its host is the IP address, its TLS server name the host name.
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from sync.hull import client as hull_client
from sync.hull.client import HullApiError
from sync.models import DeliveryStatus, HullNotification

PUBLIC = "93.184.215.14"
LINES = b'{"id":"u1","email":"a@example.com"}\n{"id":"u2","email":"b@example.com"}\n'


@pytest.fixture
def dns(monkeypatch, settings):
    """host -> list of answers, consumed one per resolution (the last one repeats)."""
    table: dict[str, list[list[str]]] = {}
    asked: list[str] = []

    real_getaddrinfo = socket.getaddrinfo
    redis_port = urlsplit(settings.REDIS_URL).port if settings.REDIS_URL else None

    def getaddrinfo(host, port, *args, **kwargs):
        if redis_port and port == redis_port:  # the cache's own connection (PostgreSQL + Redis runs), not a download
            return real_getaddrinfo(host, port, *args, **kwargs)
        asked.append(host)
        answers = table.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        current = answers.pop(0) if len(answers) > 1 else answers[0]
        return [((socket.AF_INET6 if ":" in a else socket.AF_INET), socket.SOCK_STREAM, 6, "", (a, port)) for a in current]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    table["asked"] = asked
    return table


def _lines(url: str, **kwargs) -> list[bytes]:
    return list(hull_client.stream_export_lines(url, max_bytes=10_000_000, **kwargs))


def test_a_public_host_is_fetched_from_the_address_that_was_checked(dns, transport):
    dns["files.example.com"] = [[PUBLIC], ["127.0.0.1"]]  # a rebinding DNS: public first, loopback after
    transport.answer = lambda c: (200, {"Content-Length": str(len(LINES))}, LINES)
    assert len(_lines("https://files.example.com/exports/1.json?X-Amz-Signature=abc%2F")) == 2
    [contact] = transport.contacts
    assert (contact.host, contact.port, contact.server_hostname) == (PUBLIC, 443, "files.example.com")
    assert contact.headers.get("Host") == "files.example.com"
    assert dns["asked"] == ["files.example.com"]  # resolved once: the connection did not resolve again


@pytest.mark.parametrize("answers", [["127.0.0.1"], ["10.0.0.5"], ["169.254.169.254"], ["::1"], ["::ffff:127.0.0.1"],
                                     ["fe80::1"], ["100.64.0.1"], ["0.0.0.0"], [PUBLIC, "192.168.1.1"]])
def test_a_host_resolving_to_a_non_public_address_is_not_contacted(dns, transport, answers):
    dns["files.example.com"] = [answers]
    with pytest.raises(hull_client.HullExportRefused, match="non-public address"):
        _lines("https://files.example.com/export")
    assert transport.contacts == []


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/export", "https://[::1]/export", "http://files.example.com/export", "https://user:pw@files.example.com/x",
    "https://files.example.com\\@127.0.0.1/x", "https://files.example.com:8443/x", "https://2130706433/x", "file:///etc/passwd",
    "https://files.example.com./x",
])
def test_urls_that_are_not_plain_public_https_are_refused(dns, transport, url):
    dns["files.example.com"] = [[PUBLIC]]
    with pytest.raises(hull_client.HullExportRefused):
        _lines(url)
    assert transport.contacts == []


def test_a_redirect_to_a_private_address_is_refused_after_one_contact(dns, transport):
    dns["files.example.com"] = [[PUBLIC]]
    dns["internal.example.com"] = [["10.1.2.3"]]
    transport.answer = lambda c: (302, {"Location": "https://internal.example.com/secret"}, b"")
    with pytest.raises(hull_client.HullExportRefused):
        _lines("https://files.example.com/export")
    assert transport.hosts == [PUBLIC]


@pytest.mark.parametrize("location", ["http://files.example.com/x", "https://127.0.0.1/x", "file:///etc/passwd", "https://u:p@files.example.com/x"])
def test_a_redirect_off_https_or_to_an_ip_is_refused(dns, transport, location):
    dns["files.example.com"] = [[PUBLIC]]
    transport.answer = lambda c: (301, {"Location": location}, b"")
    with pytest.raises(hull_client.HullExportRefused):
        _lines("https://files.example.com/export")
    assert transport.hosts == [PUBLIC]


def test_hull_export_hosts_narrows_hosts_and_redirects(dns, transport):
    dns["files.example.com"] = [[PUBLIC]]
    dns["hull-exports.s3.amazonaws.com"] = [["52.216.1.1"]]
    with pytest.raises(hull_client.HullExportRefused, match="not an allowed host"):
        _lines("https://files.example.com/export", allowed_hosts=["amazonaws.com"])
    transport.answer = lambda c: (
        (302, {"Location": "https://files.example.com/elsewhere"}, b"") if c.host == "52.216.1.1" else (200, {}, LINES)
    )
    with pytest.raises(hull_client.HullExportRefused, match="not an allowed host"):
        _lines("https://hull-exports.s3.amazonaws.com/export", allowed_hosts=["amazonaws.com"])
    assert transport.hosts == ["52.216.1.1"]


def test_too_many_redirects_are_refused(dns, transport):
    dns["files.example.com"] = [[PUBLIC]]
    transport.answer = lambda c: (302, {"Location": "https://files.example.com/again"}, b"")
    with pytest.raises(hull_client.HullExportRefused, match="redirected more than"):
        _lines("https://files.example.com/export")


def test_a_truncated_body_is_an_error_not_a_short_export(dns, transport):
    dns["files.example.com"] = [[PUBLIC]]
    transport.answer = lambda c: (200, {"Content-Length": "5000"}, LINES)
    with pytest.raises(hull_client.HullExportRefused, match="cut short"):
        _lines("https://files.example.com/export")


def test_a_line_longer_than_the_limit_is_refused(dns, transport):
    dns["files.example.com"] = [[PUBLIC]]
    transport.answer = lambda c: (200, {}, b'{"id":"' + b"x" * 5000 + b'"}\n')
    with pytest.raises(hull_client.HullExportRefused, match="line longer"):
        _lines("https://files.example.com/export", max_line_bytes=1000)


def test_the_download_has_an_overall_deadline(dns, transport):
    dns["files.example.com"] = [[PUBLIC]]
    transport.answer = lambda c: (200, {}, LINES * 50000)
    ticks = iter(range(0, 10_000, 1))
    with pytest.raises(hull_client.HullExportRefused, match="took longer"):
        _lines("https://files.example.com/export", deadline_seconds=3, clock=lambda: next(ticks))


# -- end to end: each failure ends the export failed with its reason, replayable --------------


@pytest.mark.parametrize("url,answer,reason", [
    ("https://127.0.0.1/export", None, "URL refused"),
    ("https://files.example.com/export", (302, {"Location": "http://files.example.com/x"}, b""), "URL refused"),
    ("https://files.example.com/export", (200, {"Content-Length": "9999"}, LINES), "cut short"),
    ("https://rebind.example.com/export", None, "non-public address"),
])
def test_each_refusal_ends_the_export_failed_with_the_reason(client, connector, dns, transport, django_capture_on_commit_callbacks, url, answer, reason):
    dns["files.example.com"] = [[PUBLIC]]
    dns["rebind.example.com"] = [["127.0.0.1"]]
    if answer:
        transport.answer = lambda c: answer
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/hull/acme/batch?ship={connector.hull_id}&secret={connector.hull_secret}",
            data=json.dumps({"url": url, "format": "json", "object_type": "user_report"}),
            content_type="application/json",
        )
    assert response.status_code == 200
    export = HullNotification.objects.get(is_export=True)
    assert export.status == DeliveryStatus.FAILED, export.status
    assert reason in export.error
    assert all(c.host == PUBLIC for c in transport.contacts)


def test_the_refusals_are_hull_api_errors_so_the_export_lifecycle_fails_them():
    assert issubclass(hull_client.HullExportRefused, HullApiError)
