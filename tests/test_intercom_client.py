"""The Intercom client against the sandbox: typed errors, retries, the shared rate budget, pagination."""

from __future__ import annotations

import logging

import pytest
import requests
import urllib3

from sync.intercom.budget import DatabaseBudget, budget_remaining
from sync.intercom.client import INTERCOM_VERSION, IntercomClient
from sync.intercom.errors import (
    IntercomConflict,
    IntercomNotFound,
    IntercomOutcomeUnknown,
    IntercomRateLimited,
    IntercomServerError,
    IntercomUnauthorized,
    IntercomUnavailable,
    IntercomUnknownAttribute,
    IntercomValidationError,
)
from tests.conftest import INTERCOM_TOKEN


def test_every_call_sends_the_bearer_token_and_the_pinned_api_version(intercom_sandbox, responses_mock):
    intercom_sandbox.client().me()
    sent = responses_mock.calls[-1].request.headers
    assert sent["Authorization"] == f"Bearer {INTERCOM_TOKEN}"
    assert sent["Intercom-Version"] == INTERCOM_VERSION == "2.15"
    assert sent["Accept"] == "application/json"


def test_for_connector_uses_the_connector_token_workspace_and_base(connector, intercom_sandbox):
    client = IntercomClient.for_connector(connector)
    assert client.workspace_key == "ws_acme"
    assert client.base_url == "https://api.intercom.io"
    assert client.me()["app"]["id_code"] == "ws_acme"
    assert INTERCOM_TOKEN not in repr(client)


def test_an_unknown_token_raises_unauthorized_with_intercoms_code(intercom_sandbox):
    client = IntercomClient("not-a-token", workspace_key="ws_other")
    with pytest.raises(IntercomUnauthorized) as err:
        client.me()
    assert (err.value.status, err.value.code, err.value.message) == (401, "unauthorized", "Access Token Invalid")


def test_a_missing_contact_raises_not_found(intercom_sandbox):
    with pytest.raises(IntercomNotFound) as err:
        intercom_sandbox.client().get_contact("0123456789abcdef01234567")
    assert err.value.code == "not_found"
    assert err.value.url == "/contacts/0123456789abcdef01234567"


def test_a_duplicate_user_raises_conflict_carrying_the_existing_id(intercom_sandbox):
    client = intercom_sandbox.client()
    first = client.create_contact({"role": "user", "external_id": "25", "email": "wash@serenity.io"})
    with pytest.raises(IntercomConflict) as err:
        client.create_contact({"role": "user", "external_id": "25", "email": "other@serenity.io"})
    assert err.value.status == 409
    assert err.value.existing_id == first["id"]


def test_user_to_lead_is_a_validation_error_with_intercoms_code(intercom_sandbox):
    client = intercom_sandbox.client()
    user = client.create_contact({"role": "user", "email": "zoe@serenity.io"})
    with pytest.raises(IntercomValidationError) as err:
        client.update_contact(user["id"], {"role": "lead"})
    assert err.value.code == "client_error"
    assert "can't be converted to a lead" in err.value.message


def test_an_unknown_custom_attribute_names_the_attribute(intercom_sandbox):
    with pytest.raises(IntercomUnknownAttribute) as err:
        intercom_sandbox.client().create_contact({"email": "kaylee@serenity.io", "custom_attributes": {"engine": "ok"}})
    assert err.value.attribute == "engine"
    assert isinstance(err.value, IntercomValidationError)


def test_server_errors_are_retried_with_growing_backoff_then_raised(intercom_sandbox):
    intercom_sandbox.set_fault_rate(1.0)
    client = intercom_sandbox.client(max_retries=3, backoff_base=1.0)
    with pytest.raises(IntercomServerError) as err:
        client.me()
    assert err.value.status in (500, 503, 504)
    assert len(intercom_sandbox.calls) == 4
    # equal jitter: attempt n waits between base*2**n / 2 and base*2**n
    assert len(intercom_sandbox.slept) == 3
    for attempt, slept in enumerate(intercom_sandbox.slept):
        assert 2**attempt / 2 <= slept <= 2**attempt


def test_a_share_of_server_errors_loses_nothing(intercom_sandbox):
    intercom_sandbox.set_fault_rate(0.3, seed=7)
    client = intercom_sandbox.client(max_retries=6)
    for n in range(15):
        client.create_contact({"role": "user", "external_id": f"u{n}"})
    assert len(intercom_sandbox.contacts()) == 15
    assert any(status >= 500 for status in intercom_sandbox.responses)


def test_a_lead_create_that_failed_after_the_work_is_not_sent_again(intercom_sandbox):
    """Intercom made the lead, then answered 5xx: a retry would make its twin."""
    intercom_sandbox.set_fault_rate(1.0, mode="after")
    client = intercom_sandbox.client(max_retries=3)
    with pytest.raises(IntercomOutcomeUnknown) as err:
        client.create_contact({"role": "lead", "email": "visitor@example.com"})
    assert err.value.status in (500, 503, 504) and err.value.code == "outcome_unknown"
    assert len(intercom_sandbox.contacts(role="lead")) == 1
    assert [c.path for c in intercom_sandbox.calls] == ["/contacts"]


def test_a_user_create_that_failed_after_the_work_is_retried_into_a_409_not_a_twin(intercom_sandbox):
    """A user's external_id is unique: the retry is refused with the first one's id."""
    intercom_sandbox.set_fault_rate(0.5, seed=1, mode="after")
    client = intercom_sandbox.client(max_retries=6)
    made: list[str] = []
    for n in range(8):
        try:
            made.append(client.create_contact({"role": "user", "external_id": f"u{n}"})["id"])
        except IntercomConflict as exc:
            made.append(exc.existing_id or "")
    intercom_sandbox.set_fault_rate(0.0)
    users = intercom_sandbox.contacts(role="user")
    assert sorted(u["external_id"] for u in users) == [f"u{n}" for n in range(8)]
    assert sorted(made) == sorted(u["id"] for u in users)
    assert 409 in intercom_sandbox.responses


def test_an_answer_lost_after_the_work_is_an_unknown_outcome_for_a_lead(intercom_sandbox):
    intercom_sandbox.set_fault_rate(1.0, mode="drop")
    with pytest.raises(IntercomOutcomeUnknown):
        intercom_sandbox.client(max_retries=3).create_contact({"role": "lead"})
    assert len(intercom_sandbox.contacts(role="lead")) == 1


def test_events_and_company_upserts_are_retried_after_a_failure_after_the_work(intercom_sandbox):
    """Both are idempotent at Intercom: events dedupe on (contact, name, created_at), companies upsert by company_id."""
    client = intercom_sandbox.client(max_retries=6)
    user = client.create_contact({"role": "user", "external_id": "e1"})
    intercom_sandbox.set_fault_rate(0.5, seed=2, mode="after")
    for n in range(4):
        client.create_event({"event_name": "paid", "created_at": 1700000000 + n, "id": user["id"]})
        client.upsert_company({"company_id": f"c{n}", "name": f"C{n}"})
    intercom_sandbox.set_fault_rate(0.0)
    assert len(intercom_sandbox.events()) == 4
    assert sorted(c["company_id"] for c in intercom_sandbox.companies()) == ["c0", "c1", "c2", "c3"]
    assert any(status >= 500 for status in intercom_sandbox.responses)


def _lost_client(slept: list[float]) -> IntercomClient:
    return IntercomClient("t", workspace_key="ws_lost", base_url="https://lost.example", max_retries=3, sleep=slept.append)


def test_a_create_whose_answer_was_lost_is_not_sent_again(intercom_sandbox, responses_mock):
    """Intercom may have made the lead: a second POST would make its twin (leads have no unique field)."""
    responses_mock.add("POST", "https://lost.example/contacts", body=requests.ReadTimeout("read timed out"))
    slept: list[float] = []
    with pytest.raises(IntercomOutcomeUnknown) as err:
        _lost_client(slept).create_contact({"role": "lead", "email": "visitor@example.com"})
    assert err.value.code == "outcome_unknown"
    assert len(responses_mock.calls) == 1 and slept == []


def test_a_create_that_never_reached_intercom_is_sent_again(intercom_sandbox, responses_mock):
    refused = requests.ConnectionError(urllib3.exceptions.NewConnectionError(None, "Connection refused"))
    responses_mock.add("POST", "https://lost.example/contacts", body=refused)
    responses_mock.add("POST", "https://lost.example/contacts", json={"type": "contact", "id": "c1"})
    slept: list[float] = []
    assert _lost_client(slept).create_contact({"role": "lead"})["id"] == "c1"
    assert len(responses_mock.calls) == 2 and len(slept) == 1


def test_an_update_whose_answer_was_lost_is_sent_again(intercom_sandbox, responses_mock):
    responses_mock.add("PUT", "https://lost.example/contacts/c1", body=requests.ReadTimeout("read timed out"))
    responses_mock.add("PUT", "https://lost.example/contacts/c1", json={"type": "contact", "id": "c1"})
    slept: list[float] = []
    assert _lost_client(slept).update_contact("c1", {"name": "Ada"})["id"] == "c1"  # the same PUT twice is harmless
    assert len(responses_mock.calls) == 2


def test_connection_errors_are_retried_then_raised_as_unavailable(intercom_sandbox, responses_mock):
    responses_mock.add("GET", "https://down.example/me", body=requests.ConnectionError("refused"))
    slept: list[float] = []
    client = IntercomClient("t", workspace_key="ws_down", base_url="https://down.example", max_retries=2, sleep=slept.append)
    with pytest.raises(IntercomUnavailable) as err:
        client.me()
    assert isinstance(err.value.__cause__, requests.ConnectionError)
    assert len(slept) == 2


def test_a_429_waits_until_the_window_resets_then_succeeds(intercom_sandbox):
    intercom_sandbox.set_rate_limit(3, window_seconds=10)
    # Two budgets that do not know about each other (two deployments on one workspace).
    other = intercom_sandbox.client(workspace_key="another-deployment")
    for _ in range(3):
        other.me()
    client = intercom_sandbox.client()
    assert client.me()["type"] == "admin"
    assert intercom_sandbox.responses[-2:] == [429, 200]
    assert 0 < intercom_sandbox.slept[-1] <= 10.25


def test_a_429_whose_reset_is_too_far_is_raised_with_the_reset_time(intercom_sandbox):
    intercom_sandbox.set_rate_limit(1, window_seconds=3600)
    intercom_sandbox.client(workspace_key="another-deployment").me()
    with pytest.raises(IntercomRateLimited) as err:
        intercom_sandbox.client(max_rate_wait=5).me()
    assert err.value.reset_at is not None
    assert err.value.code == "rate_limit_exceeded"


def test_two_clients_on_one_workspace_share_the_budget_and_never_see_a_429(intercom_sandbox):
    intercom_sandbox.set_rate_limit(4, window_seconds=10)
    first, second = intercom_sandbox.client(), intercom_sandbox.client()
    for n in range(10):
        (first if n % 2 else second).me()
    assert 429 not in intercom_sandbox.responses
    assert len(intercom_sandbox.calls) == 10
    assert len([s for s in intercom_sandbox.slept if s > 0.5]) == 2  # two windows waited for


def test_budget_remaining_reports_the_shared_window(intercom_sandbox):
    intercom_sandbox.set_rate_limit(50, window_seconds=10)
    assert budget_remaining("ws_acme") is None
    client = intercom_sandbox.client()
    client.me()
    client.me()
    assert budget_remaining("ws_acme") == 48


@pytest.mark.django_db
def test_the_budget_refuses_to_overdraw_a_window():
    budget = DatabaseBudget()
    budget.record("ws_x", limit=2, remaining=2, reset=1000.0, now=990.0)
    assert budget.acquire("ws_x", now=991.0).wait == 0
    assert budget.acquire("ws_x", now=991.0).wait == 0
    refused = budget.acquire("ws_x", now=991.0)
    assert refused.wait == pytest.approx(9.0)
    assert budget.acquire("ws_x", now=1000.5).wait == 0  # new window


@pytest.mark.django_db
def test_the_budget_keeps_the_lower_count_within_a_window_and_takes_a_newer_window():
    budget = DatabaseBudget()
    budget.record("ws_y", limit=10, remaining=5, reset=1000.0, now=990.0)
    budget.record("ws_y", limit=10, remaining=7, reset=1000.0, now=990.0)  # a slower, older answer
    assert budget.remaining("ws_y", now=995.0) == 5
    budget.record("ws_y", limit=10, remaining=9, reset=1010.0, now=1001.0)
    assert budget.remaining("ws_y", now=1001.0) == 9


def test_list_contacts_holds_one_page_at_a_time(intercom_sandbox):
    for n in range(7):
        intercom_sandbox.add_contact(external_id=f"u{n}")
    client = intercom_sandbox.client()
    contacts = client.list_contacts(per_page=3)
    first = next(contacts)
    assert len(intercom_sandbox.calls) == 1
    rest = list(contacts)
    assert [c["external_id"] for c in [first, *rest]] == [f"u{n}" for n in range(7)]
    assert len(intercom_sandbox.calls) == 3


def test_search_contacts_follows_the_cursor_in_the_body(intercom_sandbox):
    for n in range(5):
        intercom_sandbox.add_contact(role="lead", email=f"lead{n}@example.com")
    intercom_sandbox.add_contact(role="user", email="user@example.com")
    client = intercom_sandbox.client()
    found = list(client.search_contacts({"field": "role", "operator": "=", "value": "lead"}, per_page=2))
    assert len(found) == 5
    assert [c.path for c in intercom_sandbox.calls] == ["/contacts/search"] * 3
    assert intercom_sandbox.calls[1].body["pagination"]["starting_after"]


def test_scroll_companies_reads_every_visible_company(intercom_sandbox):
    user = intercom_sandbox.add_contact(email="u@example.com")
    for n in range(120):
        intercom_sandbox.add_company(f"c{n}", name=f"Company {n}", contact_ids=[user["id"]])
    companies = list(intercom_sandbox.client().scroll_companies())
    assert len(companies) == 120
    assert len(intercom_sandbox.calls) == 4  # 50 + 50 + 20 + the empty page that ends the scroll


def test_find_company_returns_none_when_absent(intercom_sandbox):
    client = intercom_sandbox.client()
    assert client.find_company(company_id="nope") is None
    created = client.upsert_company({"company_id": "acme", "name": "Acme"})
    assert client.find_company(company_id="acme")["id"] == created["id"]


def test_events_answer_202_and_the_client_returns_an_empty_dict(intercom_sandbox):
    user = intercom_sandbox.add_contact(external_id="42")
    body = {"event_name": "ordered-item", "created_at": 1700000000, "user_id": "42", "metadata": {"sku": "x"}}
    assert intercom_sandbox.client().create_event(body) == {}
    assert intercom_sandbox.events(user["id"])[0]["event_name"] == "ordered-item"


def test_one_log_line_per_call_without_token_or_personal_data(intercom_sandbox, caplog):
    caplog.set_level(logging.INFO, logger="sync.intercom.client")
    client = intercom_sandbox.client()
    client.create_contact({"role": "user", "email": "private@example.com"})
    client.find_company(company_id="secret-company")
    records = [r for r in caplog.records if r.getMessage() == "intercom.request"]
    assert len(records) == 2
    assert {(r.method, r.path, r.status) for r in records} == {("POST", "/contacts", 200), ("GET", "/companies", 404)}
    assert all(isinstance(r.ms, float) for r in records)
    dumped = " ".join(str(vars(r)) for r in records)
    assert INTERCOM_TOKEN not in dumped
    assert "private@example.com" not in dumped and "secret-company" not in dumped


@pytest.fixture
def redis_url(tmp_path):
    """A throw-away redis-server on a free port (skipped where Redis is not installed)."""
    import shutil
    import socket
    import subprocess
    import time

    binary = shutil.which("redis-server")
    if not binary:
        pytest.skip("redis-server not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_the_redis_budget_follows_the_same_rules(redis_url):
    from sync.intercom.budget import RedisBudget

    budget = RedisBudget(redis_url)
    assert budget.acquire("ws_r", now=990.0).wait == 0  # unknown window: go
    budget.record("ws_r", limit=2, remaining=2, reset=1000.0, now=990.0)
    budget.record("ws_r", limit=2, remaining=5, reset=1000.0, now=990.0)  # stale, higher: ignored
    assert budget.acquire("ws_r", now=991.0).wait == 0
    assert budget.acquire("ws_r", now=991.0).wait == 0
    assert budget.acquire("ws_r", now=991.0).wait == pytest.approx(9.0)
    assert budget.remaining("ws_r", now=991.0) == 0
    budget.exhausted("ws_r", reset=1020.0, now=1001.0)
    assert budget.acquire("ws_r", now=1001.0).wait == pytest.approx(19.0)
    assert budget.acquire("ws_r", now=1021.0).wait == 0


def _one_probe_opens_each_window(budget, key: str) -> None:
    budget.record(key, limit=3, remaining=0, reset=1000.0, now=999.0)
    # The window is over: the first caller goes (the probe), the others wait briefly for its answer
    # instead of all going and overdrawing the new window.
    assert budget.acquire(key, now=1000.1).wait == 0
    for _ in range(3):
        assert 0 < budget.acquire(key, now=1000.1).wait <= 0.05
    assert budget.remaining(key, now=1000.1) == 3  # flow control sees a fresh window, not an empty one
    # The probe's answer opens the window for everyone, counting the probe itself.
    budget.record(key, limit=3, remaining=2, reset=1010.0, now=1000.2)
    assert [budget.acquire(key, now=1000.2).wait for _ in range(3)][:2] == [0, 0]
    assert budget.acquire(key, now=1000.2).wait == pytest.approx(9.8)
    # A probe that never answers (a timeout) is replaced by the next caller after PROBE_TIMEOUT.
    assert budget.acquire(key, now=1010.1).wait == 0
    assert budget.acquire(key, now=1011.0).wait > 0
    assert budget.acquire(key, now=1012.2).wait == 0
    # An answer for a window ending sooner than the probe's deadline still opens it.
    budget.record(key, limit=3, remaining=2, reset=1013.0, now=1012.3)
    assert budget.acquire(key, now=1012.3).wait == 0


@pytest.mark.django_db
def test_at_a_window_change_one_probe_goes_first_database():
    _one_probe_opens_each_window(DatabaseBudget(), "ws_probe")


def test_at_a_window_change_one_probe_goes_first_redis(redis_url):
    from sync.intercom.budget import RedisBudget

    _one_probe_opens_each_window(RedisBudget(redis_url), "ws_probe")
