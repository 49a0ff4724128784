"""The Intercom sandbox reproduces what makes integrations fail in production (docs/intercom-api.md#sandbox-checklist)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from sandbox.intercom import api, clock, resources
from sandbox.intercom.contract import ContractRequest, ContractResponse, ContractViolation, validate_response
from sandbox.intercom.models import Workspace
from sync.intercom.errors import (
    IntercomApiError,
    IntercomConflict,
    IntercomNotFound,
    IntercomUnknownAttribute,
    IntercomValidationError,
)
from tests.conftest import INTERCOM_TOKEN

DAY = 86400


@pytest.fixture
def intercom(intercom_sandbox):
    return intercom_sandbox.client()


def call(method, path, body=None, query=None, token=INTERCOM_TOKEN):
    return api.handle_request(method, path, query or {}, {"Authorization": f"Bearer {token}"}, body)


# -- identity and roles -------------------------------------------------------------------------


def test_external_id_is_unique_among_users(intercom):
    user = intercom.create_contact({"role": "user", "external_id": "7"})
    with pytest.raises(IntercomConflict) as err:
        intercom.create_contact({"role": "user", "external_id": "7", "email": "x@example.com"})
    assert err.value.message == f"A contact matching those details already exists with id={user['id']}"


def test_email_is_unique_among_users_without_external_id(intercom):
    user = intercom.create_contact({"role": "user", "email": "Mal@Serenity.io"})
    with pytest.raises(IntercomConflict) as err:
        intercom.create_contact({"role": "user", "email": "mal@serenity.io"})
    assert err.value.existing_id == user["id"]
    # with an external_id the same email is another person
    intercom.create_contact({"role": "user", "email": "mal@serenity.io", "external_id": "mal-2"})


def test_leads_may_share_an_email_with_each_other_and_with_users(intercom):
    intercom.create_contact({"role": "user", "email": "river@serenity.io"})
    intercom.create_contact({"role": "lead", "email": "river@serenity.io"})
    intercom.create_contact({"role": "lead", "email": "river@serenity.io"})


def test_an_archived_user_still_blocks_creation_with_the_archived_message(intercom):
    user = intercom.create_contact({"role": "user", "external_id": "arch"})
    intercom.archive_contact(user["id"])
    with pytest.raises(IntercomConflict) as err:
        intercom.create_contact({"role": "user", "external_id": "arch"})
    assert err.value.message.startswith("An archived contact") and err.value.existing_id == user["id"]


def test_an_update_that_collides_is_a_conflict(intercom):
    first = intercom.create_contact({"role": "user", "external_id": "a"})
    second = intercom.create_contact({"role": "user", "external_id": "b"})
    with pytest.raises(IntercomConflict) as err:
        intercom.update_contact(second["id"], {"external_id": "a"})
    assert err.value.existing_id == first["id"]


def test_a_lead_becomes_a_user_in_place_but_never_back(intercom):
    lead = intercom.create_contact({"role": "lead", "email": "inara@serenity.io"})
    user = intercom.update_contact(lead["id"], {"role": "user", "external_id": "inara"})
    assert (user["id"], user["role"], user["external_id"]) == (lead["id"], "user", "inara")
    with pytest.raises(IntercomValidationError):
        intercom.update_contact(lead["id"], {"role": "lead"})


def test_a_user_needs_an_email_or_external_id(intercom):
    with pytest.raises(IntercomValidationError):
        intercom.create_contact({"role": "user", "name": "Nobody"})
    assert intercom.create_contact({"role": "lead"})["email"] == ""


def test_update_changes_only_the_keys_sent(intercom, intercom_sandbox):
    intercom_sandbox.add_data_attribute("plan")
    intercom_sandbox.add_data_attribute("seats", "integer")
    user = intercom.create_contact({"email": "a@example.com", "name": "A", "custom_attributes": {"plan": "pro", "seats": 3}})
    updated = intercom.update_contact(user["id"], {"custom_attributes": {"seats": 4}})
    assert updated["name"] == "A"
    assert updated["custom_attributes"] == {"plan": "pro", "seats": 4}


def test_delete_then_get_is_not_found(intercom):
    user = intercom.create_contact({"email": "gone@example.com"})
    assert intercom.delete_contact(user["id"]) == {"type": "contact", "id": user["id"], "external_id": None, "deleted": True}
    with pytest.raises(IntercomNotFound):
        intercom.get_contact(user["id"])


def test_find_by_external_id_finds_users_only(intercom, intercom_sandbox):
    intercom_sandbox.add_contact(role="lead", external_id="lead-1")
    user = intercom_sandbox.add_contact(role="user", external_id="user-1")
    assert intercom.find_contact_by_external_id("user-1")["id"] == user["id"]
    with pytest.raises(IntercomNotFound):
        intercom.find_contact_by_external_id("lead-1")


# -- merge ----------------------------------------------------------------------------------


def test_merge_moves_a_lead_into_a_user_and_the_lead_disappears(intercom, intercom_sandbox):
    intercom_sandbox.add_data_attribute("source")
    lead = intercom.create_contact({"role": "lead", "email": "l@example.com", "phone": "+331", "custom_attributes": {"source": "ads"}})
    tag = intercom.create_tag("Hot")
    intercom.tag_contact(lead["id"], tag["id"])
    user = intercom.create_contact({"role": "user", "external_id": "u1"})
    merged = intercom.merge_contacts(lead_id=lead["id"], user_id=user["id"])
    assert merged["id"] == user["id"]
    assert (merged["email"], merged["phone"], merged["custom_attributes"]) == ("l@example.com", "+331", {"source": "ads"})
    assert intercom_sandbox.contact_tag_names(user["id"]) == ["Hot"]
    with pytest.raises(IntercomNotFound):
        intercom.get_contact(lead["id"])
    intercom_sandbox.advance(120)  # once Intercom's search index caught up with the merge
    assert [c["id"] for c in intercom.search_contacts({"field": "email", "operator": "=", "value": "l@example.com"})] == [user["id"]]


def test_merge_refuses_anything_but_lead_into_user(intercom):
    a = intercom.create_contact({"role": "user", "external_id": "a"})
    b = intercom.create_contact({"role": "user", "external_id": "b"})
    with pytest.raises(IntercomValidationError) as err:
        intercom.merge_contacts(lead_id=a["id"], user_id=b["id"])
    assert err.value.code == "invalid_merge"


# -- search -----------------------------------------------------------------------------------


def _ids(intercom, query):
    return sorted(c["external_id"] or c["email"] for c in intercom.search_contacts(query))


def test_search_operators_the_connector_uses(intercom, intercom_sandbox):
    intercom_sandbox.add_contact(external_id="u1", email="one@acme.com")
    intercom_sandbox.add_contact(external_id="u2", email="two@globex.com")
    intercom_sandbox.add_contact(role="lead", email="lead@acme.com")
    assert _ids(intercom, {"field": "email", "operator": "=", "value": "ONE@acme.com"}) == ["u1"]
    assert _ids(intercom, {"field": "role", "operator": "!=", "value": "user"}) == ["lead@acme.com"]
    assert _ids(intercom, {"field": "external_id", "operator": "IN", "value": ["u2", "zz"]}) == ["u2"]
    assert _ids(intercom, {"field": "email", "operator": "~", "value": "acme"}) == ["lead@acme.com", "u1"]
    nested = {"operator": "AND", "value": [
        {"field": "role", "operator": "=", "value": "user"},
        {"operator": "OR", "value": [
            {"field": "email", "operator": "~", "value": "globex"},
            {"field": "external_id", "operator": "=", "value": "u1"},
        ]},
    ]}  # fmt: skip
    assert _ids(intercom, nested) == ["u1", "u2"]


def test_search_compares_dates_by_day_in_the_workspace_time_zone(intercom, intercom_sandbox):
    noon = int(datetime(2026, 3, 10, 12, tzinfo=timezone.utc).timestamp())
    intercom_sandbox.add_contact(external_id="old", updated_at=noon - 2 * DAY)
    intercom_sandbox.add_contact(external_id="same-day", updated_at=noon + 3600)
    intercom_sandbox.add_contact(external_id="later", updated_at=noon + DAY)
    # `> T` starts on the next day: the rest of T's day is missed (docs/intercom-api.md#contact-search)
    assert _ids(intercom, {"field": "updated_at", "operator": ">", "value": noon}) == ["later"]
    assert _ids(intercom, {"field": "updated_at", "operator": "=", "value": noon}) == ["same-day"]
    assert _ids(intercom, {"field": "updated_at", "operator": "<", "value": noon}) == ["old"]
    assert _ids(intercom, {"field": "updated_at", "operator": ">", "value": noon - DAY}) == ["later", "same-day"]


def test_search_rejects_operators_dates_do_not_support_and_unknown_fields(intercom):
    with pytest.raises(IntercomValidationError):
        intercom.search_contacts_page({"field": "updated_at", "operator": ">=", "value": 1})
    with pytest.raises(IntercomValidationError):
        intercom.search_contacts_page({"field": "custom_attributes.nope", "operator": "=", "value": "x"})


def test_search_index_lags_writes_by_the_configured_delay(intercom, intercom_sandbox):
    intercom_sandbox.set_search_lag(120)
    query = {"field": "external_id", "operator": "=", "value": "fresh"}
    user = intercom.create_contact({"role": "user", "external_id": "fresh", "name": "Before"})
    assert list(intercom.search_contacts(query)) == []
    assert intercom.get_contact(user["id"])["name"] == "Before"  # reads by id are immediate
    intercom_sandbox.advance(121)
    assert [c["id"] for c in intercom.search_contacts(query)] == [user["id"]]
    # an update is searchable by its new values only after the lag, its old values until then
    intercom.update_contact(user["id"], {"external_id": "renamed"})
    assert [c["id"] for c in intercom.search_contacts(query)] == [user["id"]]
    assert list(intercom.search_contacts({"field": "external_id", "operator": "=", "value": "renamed"})) == []
    intercom_sandbox.advance(121)
    assert list(intercom.search_contacts(query)) == []


def test_search_lag_turns_search_then_create_into_a_409(intercom, intercom_sandbox):
    intercom_sandbox.set_search_lag(60)
    intercom.create_contact({"role": "user", "email": "race@example.com"})
    assert list(intercom.search_contacts({"field": "email", "operator": "=", "value": "race@example.com"})) == []
    with pytest.raises(IntercomConflict):
        intercom.create_contact({"role": "user", "email": "race@example.com"})


# -- pagination -------------------------------------------------------------------------------


def test_per_page_above_150_is_refused_and_the_last_page_has_no_next(intercom_sandbox):
    status, _, body = call("GET", "/contacts", query={"per_page": "151"})
    assert status == 400
    intercom_sandbox.add_contact(external_id="only")
    status, _, body = call("GET", "/contacts", query={"per_page": "150"})
    assert status == 200 and body["total_count"] == 1 and "next" not in body["pages"]


def test_archived_and_deleted_contacts_are_not_listed(intercom, intercom_sandbox):
    kept = intercom_sandbox.add_contact(external_id="kept")
    archived = intercom_sandbox.add_contact(external_id="archived")
    intercom.archive_contact(archived["id"])
    assert [c["id"] for c in intercom.list_contacts()] == [kept["id"]]
    intercom.unarchive_contact(archived["id"])
    assert len(list(intercom.list_contacts())) == 2


# -- companies and scroll ---------------------------------------------------------------------


def test_only_one_scroll_per_workspace_and_it_expires_when_idle(intercom, intercom_sandbox):
    user = intercom_sandbox.add_contact(external_id="u")
    for n in range(60):
        intercom_sandbox.add_company(f"c{n}", contact_ids=[user["id"]])
    first = intercom.scroll_companies_page()
    assert len(first["data"]) == 50 and first["pages"] is None and first["total_count"] is None
    with pytest.raises(IntercomValidationError) as err:
        intercom.scroll_companies_page()
    assert err.value.code == "scroll_exists"
    intercom_sandbox.advance(61)
    with pytest.raises(IntercomNotFound):
        intercom.scroll_companies_page(first["scroll_param"])
    assert len(intercom.scroll_companies_page()["data"]) == 50  # a new scroll may start


def test_companies_without_contacts_are_invisible_in_lists(intercom, intercom_sandbox):
    intercom.upsert_company({"company_id": "lonely", "name": "Lonely"})
    assert intercom.list_companies_page()["data"] == []
    assert intercom.find_company(company_id="lonely")["name"] == "Lonely"


def test_upsert_company_is_keyed_by_company_id_and_rejects_unknown_keys(intercom):
    created = intercom.upsert_company({"company_id": "acme", "name": "Acme", "monthly_spend": 10})
    updated = intercom.upsert_company({"company_id": "acme", "plan": "pro"})
    assert updated["id"] == created["id"] and updated["name"] == "Acme" and updated["plan"]["name"] == "pro"
    with pytest.raises(IntercomValidationError) as err:
        intercom.upsert_company({"company_id": "acme", "test": 1})
    assert (err.value.code, err.value.message) == ("bad_request", "bad 'test' parameter")


def test_attach_and_detach_a_company(intercom):
    user = intercom.create_contact({"external_id": "u"})
    company = intercom.upsert_company({"company_id": "acme", "name": "Acme"})
    intercom.attach_company(user["id"], company["id"])
    assert [c["id"] for c in intercom.list_contact_companies(user["id"])["data"]] == [company["id"]]
    assert intercom.get_contact(user["id"])["companies"]["total_count"] == 1
    intercom.detach_company(user["id"], company["id"])
    assert intercom.list_contact_companies(user["id"])["data"] == []
    with pytest.raises(IntercomNotFound) as err:
        intercom.attach_company(user["id"], "000000000000000000000000")
    assert err.value.code == "company_not_found"


# -- tags -------------------------------------------------------------------------------------


def test_tags_are_case_insensitive_and_applied_one_contact_at_a_time(intercom, intercom_sandbox):
    vip = intercom.create_tag("VIP")
    assert intercom.create_tag("vip")["id"] == vip["id"]
    user = intercom.create_contact({"external_id": "u"})
    applied = intercom.tag_contact(user["id"], vip["id"])
    assert applied["applied_by"]["type"] == "admin"
    assert [t["name"] for t in intercom.list_contact_tags(user["id"])["data"]] == ["VIP"]
    intercom.untag_contact(user["id"], vip["id"])
    assert intercom.list_contact_tags(user["id"])["data"] == []
    with pytest.raises(IntercomNotFound):
        intercom.tag_contact(user["id"], "999999")


def test_tag_many_users_in_one_call_and_untag_them(intercom, intercom_sandbox):
    first = intercom.create_contact({"external_id": "u1"})
    second = intercom.create_contact({"external_id": "u2"})
    tag = intercom.tag_users("Customers", [first["id"], second["id"]])  # creates the tag
    assert (tag["type"], tag["name"]) == ("tag", "Customers")
    assert intercom.tag_users("customers", [first["id"]])["id"] == tag["id"]  # names are case-insensitive
    assert intercom_sandbox.contact_tag_names(first["id"]) == ["Customers"]
    assert intercom_sandbox.contact_tag_names(second["id"]) == ["Customers"]
    # `untag: true` per item (the 1.x form; 2.15's schema allows the extra key)
    intercom._request("POST", "/tags", json={"name": "Customers", "users": [{"id": second["id"], "untag": True}]})
    assert intercom_sandbox.contact_tag_names(second["id"]) == []
    assert intercom_sandbox.contact_tag_names(first["id"]) == ["Customers"]


def test_one_unknown_user_fails_the_whole_bulk_tag(intercom, intercom_sandbox):
    user = intercom.create_contact({"external_id": "u1"})
    with pytest.raises(IntercomNotFound) as err:
        intercom.tag_users("VIP", [user["id"], "000000000000000000000000"])
    assert err.value.message == "User Not Found"
    assert intercom_sandbox.contact_tag_names(user["id"]) == []  # nothing was tagged


def test_the_bulk_user_form_is_checked_against_its_own_schema(intercom, intercom_sandbox):
    user = intercom.create_contact({"external_id": "u1"})
    with pytest.raises(ContractViolation, match="tag_multiple_users_request"):
        intercom._request("POST", "/tags", json={"name": "VIP", "users": [{"id": 5}]})
    with pytest.raises(ContractViolation, match="tag_multiple_users_request"):
        intercom._request("POST", "/tags", json={"name": "VIP", "users": {"id": user["id"]}})
    assert len(intercom_sandbox.violations) == 2
    intercom_sandbox.violations.clear()  # proven; do not fail the test at teardown


def test_tag_and_untag_companies(intercom, intercom_sandbox):
    company = intercom.upsert_company({"company_id": "acme"})
    intercom.tag_companies("Enterprise", [company["id"]])
    assert [t["name"] for t in intercom.get_company(company["id"])["tags"]["tags"]] == ["Enterprise"]
    intercom.tag_companies("Enterprise", [company["id"]], untag=True)
    assert intercom.get_company(company["id"])["tags"]["tags"] == []


# -- data attributes --------------------------------------------------------------------------


def test_unknown_custom_attributes_are_rejected_until_created(intercom):
    with pytest.raises(IntercomUnknownAttribute):
        intercom.create_contact({"external_id": "u", "custom_attributes": {"plan": "pro"}})
    created = intercom.create_data_attribute(name="plan", model="contact", data_type="string")
    assert (created["full_name"], created["custom"]) == ("custom_attributes.plan", True)
    assert intercom.create_contact({"external_id": "u", "custom_attributes": {"plan": "pro"}})["custom_attributes"] == {"plan": "pro"}
    with pytest.raises(IntercomUnknownAttribute):
        intercom.upsert_company({"company_id": "c", "custom_attributes": {"plan": "pro"}})  # per model


def test_custom_attribute_values_are_typed_and_bounded(intercom, intercom_sandbox):
    intercom_sandbox.add_data_attribute("seats", "integer")
    intercom_sandbox.add_data_attribute("note")
    for bad in ({"seats": "three"}, {"note": "x" * 256}, {"note": ["a", "b"]}):
        with pytest.raises(IntercomValidationError):
            intercom.create_contact({"external_id": "u", "custom_attributes": bad})


@pytest.mark.parametrize(
    "body, message",
    [
        ({"name": "a.b", "model": "contact", "data_type": "string"}, "must only contain alphanumeric"),
        ({"name": "ok", "model": "conversation", "data_type": "string"}, "must be either contact or company"),
        ({"name": "ok", "model": "contact", "data_type": "list"}, "Data Type isn't an option"),
        ({"name": "email", "model": "contact", "data_type": "string"}, "You already have 'email'"),
    ],
)
def test_data_attribute_creation_rules(intercom_sandbox, body, message):
    status, _, answer = call("POST", "/data_attributes", body)
    assert status == 400
    assert answer["errors"][0]["code"] == "parameter_invalid"
    assert message in answer["errors"][0]["message"]


def test_a_data_attribute_cannot_be_created_twice(intercom):
    intercom.create_data_attribute(name="Mithril Shirt", model="company", data_type="boolean")
    with pytest.raises(IntercomValidationError) as err:
        intercom.create_data_attribute(name="mithril shirt", model="company", data_type="boolean")
    assert "already have" in err.value.message
    names = [a["name"] for a in intercom.list_data_attributes("company")["data"]]
    assert names.count("Mithril Shirt") == 1 and "company_id" in names


# -- events, conversations, me ----------------------------------------------------------------


def test_events_are_stored_once_and_leads_are_addressed_by_id(intercom, intercom_sandbox):
    lead = intercom.create_contact({"role": "lead", "email": "lead@example.com"})
    event = {"event_name": "viewed-pricing", "created_at": 1700000000, "metadata": {f"k{n}": n for n in range(12)}}
    intercom.create_event({**event, "id": lead["id"]})
    intercom.create_event({**event, "id": lead["id"]})  # duplicate: silently ignored
    [stored] = intercom_sandbox.events(lead["id"])
    assert len(stored["metadata"]) == 10
    with pytest.raises(IntercomNotFound):
        intercom.create_event({**event, "email": "lead@example.com"})


def test_get_conversation_and_me(intercom, intercom_sandbox):
    intercom_sandbox.add_conversation({"type": "conversation", "id": "503", "created_at": 1, "updated_at": 1, "state": "closed"})
    assert intercom.get_conversation("503")["state"] == "closed"
    with pytest.raises(IntercomNotFound):
        intercom.get_conversation("504")
    assert intercom.me()["app"]["id_code"] == "ws_acme"


# -- rate limit, faults, auth -----------------------------------------------------------------


def test_the_rate_limit_answers_429_with_the_real_headers(intercom_sandbox):
    intercom_sandbox.set_rate_limit(2, window_seconds=10)
    clock.freeze(1_000_003.0)
    statuses = [call("GET", "/me")[0] for _ in range(2)]
    status, headers, body = call("GET", "/me")
    assert statuses == [200, 200] and status == 429
    assert headers["X-RateLimit-Limit"] == "2" and headers["X-RateLimit-Remaining"] == "0"
    assert headers["X-RateLimit-Reset"] == "1000010"
    assert body["errors"] == [{"code": "rate_limit_exceeded", "message": "Exceeded rate limit of 2 in 10_seconds"}]
    clock.advance(7)
    assert call("GET", "/me")[0] == 200


def test_fault_injection_answers_a_share_of_calls_with_5xx_and_changes_nothing(intercom_sandbox):
    intercom_sandbox.set_fault_rate(0.5, seed=3)
    statuses = [call("POST", "/contacts", {"role": "lead"})[0] for _ in range(40)]
    failures = [s for s in statuses if s >= 500]
    assert 10 <= len(failures) <= 30
    assert len(intercom_sandbox.contacts()) == statuses.count(200)


def test_a_struck_call_fails_after_the_work_once_and_only_that_call(intercom, intercom_sandbox):
    """`strike`: a chosen call fails with the sandbox's fault (here: the scroll moved on, then a 5xx)."""
    user = intercom_sandbox.add_contact(external_id="u")
    for n in range(120):
        intercom_sandbox.add_company(f"c{n:03d}", contact_ids=[user["id"]])
    intercom_sandbox.strike("GET", "/companies/scroll", 1, when=lambda query, body: "scroll_param" in query)
    first = intercom.scroll_companies_page()
    with pytest.raises(IntercomApiError) as err:
        intercom.scroll_companies_page(first["scroll_param"])
    assert err.value.status in (500, 503, 504)
    third = intercom.scroll_companies_page(first["scroll_param"])  # not struck: the page after the lost one
    assert [c["company_id"] for c in third["data"]] == [f"c{n:03d}" for n in range(100, 120)]
    assert intercom_sandbox.responses[-3:] == [200, err.value.status, 200]


def test_an_unknown_token_is_401_without_rate_headers(intercom_sandbox):
    status, headers, body = call("GET", "/me", token="nope")
    assert status == 401 and "X-RateLimit-Limit" not in headers
    assert body["errors"][0] == {"code": "unauthorized", "message": "Access Token Invalid"}


def test_workspace_knobs_come_from_the_sandbox_settings_model(intercom_sandbox):
    Workspace.objects.filter(pk=intercom_sandbox.workspace.pk).update(rate_limit=1)
    assert call("GET", "/me")[0] == 200
    assert call("GET", "/me")[0] == 429


def test_the_sandbox_is_served_over_http_for_the_demo(client, intercom_sandbox):
    response = client.get("/sandbox/intercom/me", HTTP_AUTHORIZATION=f"Bearer {INTERCOM_TOKEN}")
    assert response.status_code == 200 and response.json()["app"]["id_code"] == "ws_acme"
    created = client.post(
        "/sandbox/intercom/contacts", data=json.dumps({"role": "lead"}), content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {INTERCOM_TOKEN}",
    )  # fmt: skip
    assert created.status_code == 200 and created.json()["role"] == "lead"


# -- the OpenAPI contract ---------------------------------------------------------------------


def test_the_contract_check_fails_a_response_that_breaks_the_description(intercom_sandbox, monkeypatch):
    def broken_me(req):
        status, body = resources.me(req)
        return status, {**body, "has_inbox_seat": "yes", "app": {**body["app"], "created_at": "yesterday"}}

    monkeypatch.setattr(api, "ROUTES", [(m, p, broken_me if h is resources.me else h) for m, p, h in api.ROUTES])
    with pytest.raises(ContractViolation) as err:
        intercom_sandbox.client().me()
    assert "response 200 to GET /me" in str(err.value)
    intercom_sandbox.violations.clear()  # proven; do not fail the test at teardown


def test_the_contract_check_fails_a_request_that_breaks_the_description(intercom_sandbox):
    with pytest.raises(ContractViolation):
        intercom_sandbox.client().create_data_attribute(name="x", model="ticket", data_type="string")
    intercom_sandbox.violations.clear()


def test_an_undocumented_error_status_must_still_be_an_error_list():
    request = ContractRequest("GET", "/contacts/abc", [], {"Authorization": "Bearer t"}, None)
    validate_response(request, ContractResponse(404, {}, json.dumps(api.error_body("not_found", "x")).encode()))
    with pytest.raises(ContractViolation):
        validate_response(request, ContractResponse(404, {}, b'{"message": "not found"}'))


@pytest.mark.parametrize(
    "breakage",
    [
        None,
        lambda page: page["data"][0].update(id=5),  # not a string
        lambda page: page["data"][1].update(created_at="yesterday"),  # not an integer
        lambda page: page["data"][0]["custom_attributes"].update(plan=["a"]),  # lists are not attribute values
        lambda page: page["data"][1]["tags"].update(tags="none"),  # nested schema: not an array
        lambda page: page.update(data={"id": "x"}),  # not a list of companies
        lambda page: page.update(scroll_param=7),
    ],
)
def test_the_compiled_scroll_check_agrees_with_openapi_core(intercom_sandbox, breakage):
    """The company scroll's answers skip openapi-core's slow unmarshaller (contract.py
    COMPILED_RESPONSES): the compiled validator must reject whatever openapi-core rejects."""
    from sandbox.intercom.contract import _compiled_response_validator

    assert _compiled_response_validator("GET", "/companies/scroll", 200) is not None  # the path is taken
    assert _compiled_response_validator("GET", "/companies/scroll", 404) is None  # undocumented: openapi-core's rule
    member = intercom_sandbox.add_contact(email="m@example.com", external_id="m")
    for n in range(2):
        intercom_sandbox.add_company(f"co{n}", contact_ids=[member["id"]], custom_attributes={"plan": "pro"})
    status, headers, page = api.handle_request("GET", "/companies/scroll", {}, {"Authorization": f"Bearer {INTERCOM_TOKEN}"}, None)
    assert status == 200 and len(page["data"]) == 2
    if breakage is not None:
        breakage(page)
    request = ContractRequest("GET", "/companies/scroll", [], {"Authorization": f"Bearer {INTERCOM_TOKEN}"}, None)
    response = ContractResponse(status, headers, json.dumps(page).encode())
    verdicts = []
    for compiled in (True, False):
        try:
            validate_response(request, response, compiled=compiled)
            verdicts.append("accepted")
        except ContractViolation:
            verdicts.append("rejected")
    assert verdicts == (["accepted"] * 2 if breakage is None else ["rejected"] * 2)


def test_swallowed_contract_violations_still_fail_the_test(intercom_sandbox):
    intercom_sandbox.violations.append("simulated")
    with pytest.raises(IntercomApiError):
        intercom_sandbox.client().get_contact("missing")
    assert intercom_sandbox.violations == ["simulated"]
    intercom_sandbox.violations.clear()


def test_recorded_calls_compare_as_method_path_body(intercom_sandbox):
    intercom_sandbox.client().create_contact({"role": "lead"})
    assert intercom_sandbox.calls == [("POST", "/contacts", {"role": "lead"})]
    method, path, body = intercom_sandbox.calls[0]
    assert (method, intercom_sandbox.calls[0].status) == ("POST", 200)
