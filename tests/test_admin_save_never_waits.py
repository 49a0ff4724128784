"""A connector save never waits long on Intercom: slow or unreachable, the save returns in seconds.

Creating missing Intercom data attributes runs in the worker after commit; the page says it was
started and the dashboard shows how it went. The token check on save is one short, bounded call.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache
from django.urls import reverse

from sync.models import FieldMapping
from tests.admin_helpers import add_row, fake_module, form_data, formset_prefix

pytestmark = pytest.mark.django_db

SAVE_BUDGET_SECONDS = 6.0  # the admin's bounded Intercom timeout (2 s connect + 3 s read) and some slack


class _Slow(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        time.sleep(40)  # longer than any timeout a save may wait
        self.send_response(504)
        self.end_headers()

    do_POST = do_PUT = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_intercom() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def unreachable_intercom() -> str:
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _add_outgoing_mapping(client, connector) -> dict:
    data = form_data(client, connector)
    add_row(data, formset_prefix(client, connector, "User outgoing"), entity="user", direction="outgoing", hull_attribute="plan", intercom_attribute="hull_plan")
    return data


@pytest.mark.parametrize("intercom", ["slow_intercom", "unreachable_intercom"])
def test_saving_a_new_outgoing_attribute_returns_quickly_and_queues_the_creation(
    staff_client, connector, intercom, request, django_capture_on_commit_callbacks
):
    connector.intercom_api_base = request.getfixturevalue(intercom)
    connector.save()
    data = _add_outgoing_mapping(staff_client, connector)
    cache.clear()  # the worst case: nothing known about Intercom yet

    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(reverse("admin:sync_connector_change", args=[connector.pk]), {**data, "_continue": "1"})
    elapsed = time.monotonic() - started

    assert response.status_code == 302, [(f.prefix, f.errors, f.non_form_errors()) for f in response.context["inline_admin_formsets"] and [i.formset for i in response.context["inline_admin_formsets"]]] if response.context else response
    assert elapsed < SAVE_BUDGET_SECONDS, f"the save waited {elapsed:.1f} s on Intercom"
    assert FieldMapping.objects.filter(connector=connector, direction="outgoing", intercom_attribute="hull_plan").exists()
    texts = [str(m) for m in response.wsgi_request._messages]
    assert any("in the background" in text and "Background work" in text for text in texts), texts
    assert len(callbacks) == 1  # the creation, queued after commit


@pytest.mark.parametrize("intercom", ["slow_intercom", "unreachable_intercom"])
def test_a_new_token_is_checked_with_a_short_timeout(staff_client, connector, intercom, request):
    connector.intercom_api_base = request.getfixturevalue(intercom)
    connector.save()
    data = form_data(staff_client, connector)
    data["intercom_access_token"] = "a-new-private-app-token"

    started = time.monotonic()
    response = staff_client.post(reverse("admin:sync_connector_change", args=[connector.pk]), data)
    elapsed = time.monotonic() - started

    assert response.status_code == 302
    assert elapsed < SAVE_BUDGET_SECONDS, f"the token check waited {elapsed:.1f} s"
    connector.refresh_from_db()
    assert connector.intercom_access_token == "a-new-private-app-token"
    texts = [str(m) for m in response.wsgi_request._messages]
    assert any("did not answer in time" in text and "Check connector" in text for text in texts), texts


def test_the_dashboard_shows_how_the_background_work_went(staff_client, connector, monkeypatch, django_capture_on_commit_callbacks):
    def unreachable(**kwargs: object) -> None:
        raise ConnectionError("Max retries exceeded with url: /data_attributes")

    fake_module(monkeypatch, "sync.outgoing.attributes", data_attributes_sync=unreachable)
    fake_module(monkeypatch, "sync.incoming.fetch", connector_schedules_update=lambda **kwargs: [])
    data = _add_outgoing_mapping(staff_client, connector)
    with django_capture_on_commit_callbacks(execute=True):  # the worker runs it (django-q2 sync mode in tests)
        staff_client.post(reverse("admin:sync_connector_change", args=[connector.pk]), data)

    html = staff_client.get(reverse("admin:sync_connector_dashboard", args=[connector.pk])).content.decode()
    section = html[html.index('id="background-work"'):]
    assert "Creating Intercom data attributes" in section
    assert "Intercom did not create the new data attributes" in section
    assert "Traceback" not in section
