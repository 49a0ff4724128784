"""`manage.py push_segment`: a Hull segment's users reach Intercom through an export.

The Hull sandbox serves segments and export files but not the connector-requested extract
(`POST /api/v1/extract/user_reports`), so `hull_extract` plays that part of Hull: it records the
request and delivers the segment's users to /batch the way the sandbox delivers any export.
"""

from __future__ import annotations

from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command

from sync.hull.client import HullClient


def run(*args: str) -> str:
    out = StringIO()
    call_command("push_segment", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def pro_segment(connector, hull_sandbox, intercom_sandbox):
    segment = hull_sandbox.add_segment("Pro customers")
    pro = hull_sandbox.add_user({"email": "jane@acme.com", "external_id": "jane-1"}, {"plan": "pro"})
    hull_sandbox.add_user({"email": "joe@acme.com", "external_id": "joe-1"}, {"plan": "free"})
    return segment, [pro]


@pytest.fixture
def hull_extract(monkeypatch, hull_sandbox, connector, pro_segment, django_capture_on_commit_callbacks):
    requests: list[dict] = []
    real_post = HullClient.post
    segment, members = pro_segment

    def post(self, path, body):
        if path != "extract/user_reports":
            return real_post(self, path, body)
        requests.append(body)
        with django_capture_on_commit_callbacks(execute=True):
            status, _, _ = hull_sandbox.export(connector, segment_id=segment.hull_id, entities=members)
        assert status == 200
        return "ok"

    monkeypatch.setattr(HullClient, "post", post)
    return requests


def test_the_segments_users_are_sent_to_intercom_through_an_export(connector, pro_segment, hull_extract, intercom_sandbox, settings):
    settings.PUBLIC_BASE_URL = "https://connector.example.com"
    segment, _ = pro_segment
    output = run("--connector", "acme", "--segment", segment.hull_id)
    assert f"Export of segment Pro customers ({segment.hull_id}) requested from Hull." in output
    assert "secret=%2A%2A%2A%2A" in output and connector.hull_secret not in output
    [request] = hull_extract
    assert request["format"] == "json" and request["query"] == {}
    url = urlsplit(request["url"])
    assert (url.scheme, url.netloc, url.path) == ("https", "connector.example.com", "/hull/acme/batch")
    query = parse_qs(url.query)
    assert query["segment_id"] == [segment.hull_id] and query["ship"] == [connector.hull_id] and query["secret"] == [connector.hull_secret]
    emails = [contact["email"] for contact in intercom_sandbox.contacts(role="user")]
    assert emails == ["jane@acme.com"]


def test_an_unknown_segment_is_a_clear_error(connector, hull_sandbox, intercom_sandbox):
    with pytest.raises(CommandError, match="Cannot push segment nope: Hull has no segment 'nope'"):
        run("--connector", "acme", "--segment", "nope")


def test_a_paused_connector_refuses(connector):
    connector.is_active = False
    connector.save()
    with pytest.raises(CommandError, match="The connector is paused"):
        run("--connector", "acme", "--segment", "s1")


def test_hull_refusing_the_export_is_a_clear_error(connector, pro_segment, hull_sandbox):
    # The sandbox itself does not know the extract endpoint: Hull's 404 must surface, not a traceback.
    segment, _ = pro_segment
    with pytest.raises(CommandError, match="Hull refused the export of segment"):
        run("--connector", "acme", "--segment", segment.hull_id)


def test_an_unknown_connector_is_a_clear_error(db):
    with pytest.raises(CommandError, match="No connector with slug 'nope'"):
        run("--connector", "nope", "--segment", "s1")
