"""`manage.py push_segment`: a Hull segment's users reach Intercom through an export.

The Hull sandbox plays Hull: `POST /api/v1/extract/user_reports` (turned on with
`enable_extracts()`) exports the segment and POSTs it, in-process, to the URL the connector gave;
the connector's /batch endpoint then syncs it to the Intercom sandbox.
"""

from __future__ import annotations

from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command


def run(*args: str) -> str:
    out = StringIO()
    call_command("push_segment", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def pro_segment(connector, hull_sandbox, intercom_sandbox):
    hull_sandbox.add_user({"email": "jane@acme.com", "external_id": "jane-1"}, {"plan": "pro"})
    hull_sandbox.add_user({"email": "joe@acme.com", "external_id": "joe-1"}, {"plan": "free"})
    return hull_sandbox.add_segment("Pro customers", rule={"attribute": "traits_plan", "equals": "pro"})


def test_the_segments_users_are_sent_to_intercom_through_an_export(
    connector, pro_segment, hull_sandbox, intercom_sandbox, settings, django_capture_on_commit_callbacks
):
    settings.PUBLIC_BASE_URL = "https://connector.example.com"
    hull_sandbox.enable_extracts()
    with django_capture_on_commit_callbacks(execute=True):
        output = run("--connector", "acme", "--segment", pro_segment.hull_id)
    assert f"Export of segment Pro customers ({pro_segment.hull_id}) requested from Hull." in output
    assert "secret=%2A%2A%2A%2A" in output and connector.hull_secret not in output
    [request] = [call for call in hull_sandbox.calls("rest") if call.path.endswith("/extract/user_reports")]
    assert request.body["format"] == "json"
    url = urlsplit(request.body["url"])
    assert (url.scheme, url.netloc, url.path) == ("https", "connector.example.com", "/hull/acme/batch")
    query = parse_qs(url.query)
    assert query["segment_id"] == [pro_segment.hull_id] and query["ship"] == [connector.hull_id]
    assert [contact["email"] for contact in intercom_sandbox.contacts(role="user")] == ["jane@acme.com"]


def test_an_unknown_segment_is_a_clear_error(connector, hull_sandbox, intercom_sandbox):
    with pytest.raises(CommandError, match="Cannot push segment nope: Hull has no segment 'nope'"):
        run("--connector", "acme", "--segment", "nope")


def test_a_paused_connector_refuses(connector):
    connector.is_active = False
    connector.save()
    with pytest.raises(CommandError, match="The connector is paused"):
        run("--connector", "acme", "--segment", "s1")


def test_hull_refusing_the_export_is_a_clear_error(connector, pro_segment, hull_sandbox):
    # Extracts off: the sandbox answers 404 like a Hull without the endpoint; no traceback.
    with pytest.raises(CommandError, match="Hull refused the export of segment"):
        run("--connector", "acme", "--segment", pro_segment.hull_id)


def test_an_unknown_connector_is_a_clear_error(db):
    with pytest.raises(CommandError, match="No connector with slug 'nope'"):
        run("--connector", "nope", "--segment", "s1")
