"""Issue 13 item 7 / issue 16 "The demo is not offline": every Hull call of the demo (status,
checks, segments, firehose) goes to the Hull sandbox, and a fresh demo's check is all green.

The recording transport answers calls to http://testserver with this deployment's own views
(the sandboxes) and records every host contacted: nothing may leave for a real host.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from sync.hull.client import HullClient
from sync.services.hull_status import hull_status_report
from sync.models import Connector
from sync.services.ops import connector_check
from tests.security.transport import django_answer

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def demo(db, transport, settings) -> Connector:
    settings.PUBLIC_BASE_URL = "http://localhost:8000"
    call_command("seed_demo", base_url="http://testserver/", stdout=io.StringIO())
    transport.answer = django_answer
    return Connector.objects.get(slug="demo")


def test_a_fresh_demos_check_is_all_green_without_leaving_the_machine(demo, transport):
    result = connector_check(connector=demo)
    assert [item.level for item in result.items] == ["ok"] * len(result.items), [(i.name, i.message) for i in result.items]
    assert set(transport.hosts) == {"testserver"}


def test_the_demo_status_report_goes_to_the_hull_sandbox(demo, transport):
    from sandbox.hull.models import SandboxConnectorStatus

    hull_status_report(connector=demo)
    assert set(transport.hosts) == {"testserver"}
    assert any(c.url.startswith("/sandbox/hull/api/v1/") and c.method == "PUT" for c in transport.contacts)
    assert SandboxConnectorStatus.objects.exists()


def test_the_hull_sandbox_serves_the_demo_a_few_segments(demo, transport):
    client = HullClient.for_connector(demo)
    names = {s["name"] for s in client.users_segments()}
    assert {"Paying customers", "Trial users"} <= names
    assert {s["name"] for s in client.accounts_segments()} == {"Enterprise accounts"}
    assert set(transport.hosts) == {"testserver"}


def test_refused_and_unreachable_are_different_words(connector, transport, monkeypatch):
    transport.answer = lambda c: (401, {"Content-Type": "application/json"}, b'{"message":"Unauthorized"}')
    [refused] = [i for i in connector_check(connector=connector).items if i.name == "hull"]
    assert refused.message.startswith("Hull refused the connector's credentials") and "unreachable" not in refused.message

    def down(contact):
        raise ConnectionRefusedError("connection refused")

    transport.answer = down
    monkeypatch.setattr("sync.hull.client.RETRY_BACKOFF", 0)
    [unreachable] = [i for i in connector_check(connector=connector).items if i.name == "hull"]
    assert unreachable.message.startswith("Hull is unreachable") and "refused" not in unreachable.message
