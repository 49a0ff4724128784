"""The Hull client and firehose batching, checked against the Hull sandbox record by record."""

from __future__ import annotations

import time

import jwt
import pytest

from sync.hull.client import (
    HullClaimsError,
    HullClient,
    HullServerError,
    HullUnauthorized,
    default_firehose_url,
    entity_claims,
)
from sync.hull.firehose import FirehoseBatch, deterministic_event_id, set_if_null
from tests.conftest import HULL_SECRET

CONNECTOR_ID = "5c092905c36af496c700012e"


def test_user_traits_record_claim_by_claim(connector, hull_sandbox):
    before = int(time.time())
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.traits({"email": "jane@acme.com", "anonymous_id": "intercom:1", "name": "dropped"}, {"intercom_user/id": "1"})
    [record] = hull_sandbox.firehose_records
    assert record.error == ""
    assert record.type == "traits"
    assert record.claims["iss"] == CONNECTOR_ID
    assert before <= record.claims["iat"] <= int(time.time())
    assert record.claims["io.hull.subjectType"] == "user"
    assert record.claims["io.hull.asUser"] == {"email": "jane@acme.com", "anonymous_id": "intercom:1"}
    assert "io.hull.asAccount" not in record.claims
    assert "sub" not in record.claims
    assert record.body == {"intercom_user/id": "1"}
    user = hull_sandbox.user(email="jane@acme.com")
    assert user["traits_intercom_user/id"] == "1"
    assert user["anonymous_ids"] == ["intercom:1"]


def test_user_claims_with_hull_id_carry_sub(connector, hull_sandbox):
    hull_sandbox.add_user({"email": "known@acme.com"})
    hull_id = hull_sandbox.user(email="known@acme.com")["id"]
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.traits({"id": hull_id}, {"plan": "pro"})
    [record] = hull_sandbox.firehose_records
    assert record.claims["sub"] == hull_id
    assert record.subject == {"io.hull.subjectType": "user", "io.hull.asUser": {"id": hull_id}, "sub": hull_id}
    assert hull_sandbox.user(email="known@acme.com")["traits_plan"] == "pro"


def test_account_traits_record(connector, hull_sandbox):
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.account_traits({"domain": "acme.com", "external_id": "c-1"}, {"intercom/name": "Acme"})
    [record] = hull_sandbox.firehose_records
    assert record.subject == {"io.hull.subjectType": "account", "io.hull.asAccount": {"domain": "acme.com", "external_id": "c-1"}}
    [account] = hull_sandbox.accounts()
    assert account["domain"] == "acme.com"
    assert account["intercom/name"] == "Acme"  # accounts are never traits_-prefixed


def test_link_account_record_has_both_claims_and_subject_account(connector, hull_sandbox):
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.link_account({"email": "jane@acme.com"}, {"domain": "acme.com"})
    [record] = hull_sandbox.firehose_records
    assert record.subject == {
        "io.hull.subjectType": "account",
        "io.hull.asUser": {"email": "jane@acme.com"},
        "io.hull.asAccount": {"domain": "acme.com"},
    }
    assert record.body == {}
    [account] = hull_sandbox.accounts()
    assert hull_sandbox.user(email="jane@acme.com")["account_id"] == account["id"]


def test_set_if_null_only_fills_empty_attributes(connector, hull_sandbox):
    hull_sandbox.add_user({"email": "jane@acme.com"}, {"first_name": "Jane"})
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.traits({"email": "jane@acme.com"}, {"first_name": set_if_null("Janet"), "last_name": set_if_null("Doe")})
    [record] = hull_sandbox.firehose_records
    assert record.body == {
        "first_name": {"operation": "setIfNull", "value": "Janet"},
        "last_name": {"operation": "setIfNull", "value": "Doe"},
    }
    user = hull_sandbox.user(email="jane@acme.com")
    assert (user["first_name"], user["last_name"]) == ("Jane", "Doe")


def test_track_record_and_deterministic_event_id_dedupes(connector, hull_sandbox):
    event_id = deterministic_event_id("intercom", "ws_acme", "conv-1", "opened")
    for _ in range(2):  # a replay
        with FirehoseBatch(HullClient.for_connector(connector)) as batch:
            batch.track(
                {"email": "jane@acme.com"}, "Conversation opened", {"subject": "Hi"},
                event_id=event_id, created_at="2024-01-02T03:04:05Z", context={"source": "intercom", "event_type": "conversation"},
            )
    record = hull_sandbox.firehose_records[0]
    assert record.type == "track"
    assert record.subject == {"io.hull.subjectType": "user", "io.hull.asUser": {"email": "jane@acme.com"}}
    assert record.body["event"] == "Conversation opened"
    assert record.body["properties"] == {"subject": "Hi"}
    assert record.body["event_id"] == "intercom:ws_acme:conv-1:opened"
    assert record.body["created_at"] == "2024-01-02T03:04:05Z"
    assert record.body["source"] == "intercom"
    assert record.body["type"] == "conversation"
    assert record.body["ip"] is None
    [event] = hull_sandbox.events()
    assert event["event_id"] == event_id and event["source"] == "intercom"


def test_alias_and_unalias(connector, hull_sandbox):
    hull_sandbox.add_user({"email": "jane@acme.com"})
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.alias({"email": "jane@acme.com"}, "intercom:lead-9")
    assert hull_sandbox.user(email="jane@acme.com")["anonymous_ids"] == ["intercom:lead-9"]
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.unalias({"email": "jane@acme.com"}, "intercom:lead-9")
    assert hull_sandbox.user(email="jane@acme.com")["anonymous_ids"] == []
    assert [r.body for r in hull_sandbox.firehose_records] == [{"anonymous_id": "intercom:lead-9"}] * 2


def test_one_http_call_per_100_records(connector, hull_sandbox):
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        for index in range(250):
            batch.traits({"external_id": f"u-{index}"}, {"n": index})
        assert batch.calls == 2  # two full batches already went
    assert hull_sandbox.firehose_calls == 3
    assert [c.body["records"] for c in hull_sandbox.calls("firehose")] == [100, 100, 50]
    assert len(hull_sandbox.users()) == 250


def test_partial_batch_flushes_after_a_short_delay(connector, responses_mock):
    # A plain mock: the timer flushes from its own thread, which must not touch the test database.
    responses_mock.add("POST", "https://firehose.hullapp.io/", body="ok")
    batch = FirehoseBatch(HullClient.for_connector(connector), flush_after=0.05)
    batch.traits({"email": "late@acme.com"}, {"n": 1})
    deadline = time.time() + 5
    while batch.sent == 0 and time.time() < deadline:
        time.sleep(0.02)
    assert batch.sent == 1
    assert batch.records == []
    assert len(responses_mock.calls) == 1


def test_firehose_headers_carry_the_connector_credentials(connector, responses_mock):
    responses_mock.add("POST", "https://firehose.hullapp.io/", body="ok")
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.traits({"email": "a@b.c"}, {"x": 1})
    request = responses_mock.calls[0].request
    assert request.headers["Hull-App-Id"] == CONNECTOR_ID
    assert request.headers["Hull-Access-Token"] == HULL_SECRET
    assert request.headers["Hull-Organization"] == "acme.hullapp.io"
    token = jwt.decode(
        __import__("json").loads(request.body)["batch"][0]["headers"]["Hull-Access-Token"], HULL_SECRET, algorithms=["HS256"]
    )
    assert token["io.hull.asUser"] == {"email": "a@b.c"}


def test_custom_firehose_url_is_used(connector, hull_sandbox):
    connector.hull_firehose_url = "https://hull-proxy.internal.example/firehose"
    hull_sandbox.route_firehose(connector.hull_firehose_url)
    with FirehoseBatch(HullClient.for_connector(connector)) as batch:
        batch.traits({"email": "proxy@acme.com"}, {"x": 1})
    assert hull_sandbox.user(email="proxy@acme.com") is not None


def test_firehose_down_retries_then_raises_and_keeps_records(connector, hull_sandbox):
    hull_sandbox.set_down(True)
    batch = FirehoseBatch(HullClient.for_connector(connector))
    batch.traits({"email": "a@b.c"}, {"x": 1})
    with pytest.raises(HullServerError):
        batch.flush()
    assert len(batch.records) == 1
    assert len(hull_sandbox.calls("firehose")) == 3  # first try + 2 retries
    hull_sandbox.set_down(False)
    assert batch.flush() == 1
    assert hull_sandbox.user(email="a@b.c") is not None


def test_record_signed_with_wrong_secret_is_rejected_by_the_sandbox(connector, hull_sandbox):
    client = HullClient.for_connector(connector)
    client_with_bad_key = HullClient(client.connector_id, client.secret, client.organization)
    client_with_bad_key.token = lambda **kw: jwt.encode(entity_claims(client.connector_id, **kw), "wrong", algorithm="HS256")
    with FirehoseBatch(client_with_bad_key) as batch:
        batch.traits({"email": "a@b.c"}, {"x": 1})
    [record] = hull_sandbox.firehose_records
    assert record.error.startswith("invalid token")
    assert hull_sandbox.users() == []


def test_claims_need_an_allowed_key():
    with pytest.raises(HullClaimsError):
        entity_claims(CONNECTOR_ID, user={"name": "Jane"})
    with pytest.raises(HullClaimsError):
        entity_claims(CONNECTOR_ID)
    assert entity_claims(CONNECTOR_ID, user="5bd329d5e2bcf3eeaf00009f")["sub"] == "5bd329d5e2bcf3eeaf00009f"


def test_default_firehose_url_uses_the_org_domain():
    assert default_firehose_url("acme.hullapp.io") == "https://firehose.hullapp.io"
    assert default_firehose_url("c5011027.hullbeta.io") == "https://firehose.hullbeta.io"


def test_platform_rest_calls(connector, hull_sandbox):
    client = HullClient.for_connector(connector)
    hull_sandbox.add_segment("Pro users", rule={"attribute": "traits_plan", "equals": "pro"})
    assert client.get_app()["id"] == CONNECTOR_ID
    assert [s["name"] for s in client.users_segments()] == ["Pro users"]
    assert client.accounts_segments() == []
    client.put_status("warning", ["2 errors"])
    assert hull_sandbox.status(connector) == {"status": "warning", "messages": ["2 errors"]}
    rest = [(c.method, c.path) for c in hull_sandbox.calls("rest")]
    assert rest == [
        ("GET", "/api/v1/app"),
        ("GET", "/api/v1/users_segments"),
        ("GET", "/api/v1/accounts_segments"),
        ("PUT", f"/api/v1/{CONNECTOR_ID}/status"),
    ]


def test_wrong_secret_on_rest_is_unauthorized(connector, hull_sandbox):
    client = HullClient(CONNECTOR_ID, "wrong-secret", "acme.hullapp.io")
    with pytest.raises(HullUnauthorized):
        client.get_app()


def test_secret_is_not_in_repr(connector):
    assert HULL_SECRET not in repr(HullClient.for_connector(connector))


def test_records_arriving_steadily_start_one_timer_not_one_thread_each(connector, responses_mock, monkeypatch):
    """The idle flush still comes after the last record, but a burst no longer starts a thread per record."""
    import threading

    responses_mock.add("POST", "https://firehose.hullapp.io/", body="ok")
    started: list[int] = []
    real_start = threading.Timer.start
    monkeypatch.setattr(threading.Timer, "start", lambda self: (started.append(1), real_start(self))[1])
    batch = FirehoseBatch(HullClient.for_connector(connector), flush_after=0.2)
    for index in range(50):
        batch.traits({"external_id": f"u-{index}"}, {"n": index})
    assert batch.sent == 0  # quiet spell not over yet
    deadline = time.time() + 5
    while batch.sent == 0 and time.time() < deadline:
        time.sleep(0.02)
    assert batch.sent == 50
    assert len(responses_mock.calls) == 1
    assert len(started) <= 3  # was 50: one per record
