"""Outgoing sync, the scenarios of Hull's connector tests (docs/intercom-behaviour.md#test-scenarios S1-S6, S10) against the sandbox.

Each asserts the Intercom calls made (method + path + body where it matters), the records
written back to Hull, and the SyncLog rows.
"""

from __future__ import annotations

import json

import pytest

from sync.models import DeliveryStatus, Entity, IdentityLink, SyncLog
from sync.outgoing.notifications import notification_process
from tests.fixtures.outgoing.helpers import (  # noqa: F401 - pytest fixture
    account_message,
    add_mapping,
    calls,
    event,
    recording_firehose,
    segment,
    store_notification,
    user_message,
)

LEAD_SEGMENTS = [
    segment("s1", "Lead Segment 1"),
    segment("s2", "Lead Segment 2"),
    segment("s3", "Lead Segment 3  "),
    segment("s-tag", "Intercom Tag 1"),
]


def _actions(connector, entity=None):
    rows = SyncLog.objects.filter(connector=connector).order_by("id")
    if entity:
        rows = rows.filter(entity=entity)
    return [(r.action, r.reason) for r in rows]


# --- S1 -------------------------------------------------------------------------------------------


@pytest.fixture
def s1_connector(connector):
    connector.send_batch_as = "Leads"
    connector.tag_leads = True
    connector.send_events = True
    connector.outgoing_events = ["Email Opened", "Email Sent"]
    connector.save()
    add_mapping(connector, Entity.LEAD, "intercom_lead/name", "name")
    add_mapping(connector, Entity.LEAD, "intercom_lead/description", "c_description")
    add_mapping(connector, Entity.LEAD, "intercom_lead/job_title", "job_title")
    # Hull's S1 also maps account.description -> c_description; our model allows one source per
    # target (FieldMapping.unique_outgoing_target), so that clobbering case cannot arise.
    return connector


def test_s1_export_as_leads_inserts_the_lead_with_events_and_tags(s1_connector, intercom_sandbox, recording_firehose):
    intercom_sandbox.add_data_attribute("c_description")
    intercom_sandbox.add_data_attribute("job_title")
    intercom_sandbox.add_tag("Lead Segment 2")
    tag3 = intercom_sandbox.add_tag("Lead Segment 3")
    intercom_sandbox.add_tag("Lead Segment 4")
    message = user_message(
        {
            "id": "123",
            "email": "bob@rei.com",
            "traits_intercom_lead/tags": ["Lead Segment 2", "Intercom Tag 1", "Intercom Tag 2"],
            "traits_intercom_lead/name": "Bob",
            "traits_intercom_lead/description": "a description",
            "traits_intercom_lead/job_title": "sales",
        },
        segments=LEAD_SEGMENTS,
        changes={"segments": {"left": [segment("s4", "Lead Segment 4"), segment("s5", "Lead Segment 5")]}},
        events=[
            event("Email Opened", properties={"prop4": ["an", "array", "of", "values"], "prop5": {"value": ["a", "b"], "url": "google.com"}}),
            event("Email Sent", properties={"created": "1596228035"}),
            event("Email Sent", properties={"created": "1596228035"}),
            event("Email Dropped"),
            event("Email Sent", source="intercom", properties={"created": "1596228099"}),
        ],
    )
    notification = store_notification(s1_connector, [message], is_export=True)

    notification_process(notification=notification)

    [lead] = intercom_sandbox.contacts(role="lead")
    lead_id = lead["id"]
    made = calls(intercom_sandbox)
    assert made[:2] == [("POST", "/contacts/search"), ("POST", "/contacts")]
    search, create = intercom_sandbox.calls[0], intercom_sandbox.calls[1]
    assert search.body["query"] == {
        "operator": "AND",
        "value": [{"field": "email", "operator": "=", "value": "bob@rei.com"}, {"field": "role", "operator": "=", "value": "lead"}],
    }
    assert create.body == {
        "role": "lead",
        "email": "bob@rei.com",
        "name": "Bob",
        "custom_attributes": {"c_description": "a description", "job_title": "sales"},
    }
    events = [c.body for c in intercom_sandbox.calls if c.path == "/events"]
    assert [e["event_name"] for e in events] == ["Email Opened", "Email Sent", "Email Sent"]
    assert events[0]["metadata"]["prop4"] == '["an", "array", "of", "values"]'
    assert json.loads(events[0]["metadata"]["prop5"]) == {"value": '["a", "b"]', "url": "google.com"}
    assert events[1]["created_at"] == 1596228035 and events[1]["id"] == lead_id
    # Tags: "Lead Segment 1" created, "Lead Segment 3  " found trimmed; the new lead has no
    # "Lead Segment 4" to remove, so no DELETE.
    created_tag = next(c for c in intercom_sandbox.calls if c.method == "POST" and c.path == "/tags")
    assert created_tag.body == {"name": "Lead Segment 1"}
    tagged = [c.body["id"] for c in intercom_sandbox.calls if c.path == f"/contacts/{lead_id}/tags"]
    assert tag3["id"] in tagged and len(tagged) == 2
    assert not [c for c in intercom_sandbox.calls if c.method == "DELETE"]
    assert intercom_sandbox.contact_tag_names(lead_id) == ["Lead Segment 1", "Lead Segment 3"]
    assert len(intercom_sandbox.events(lead_id)) == 2  # the duplicate "Email Sent" is one event for Intercom

    [record] = recording_firehose.of_type("traits")
    assert record.claims == {"email": "bob@rei.com", "anonymous_id": f"intercom-lead:lead-{lead_id}", "id": "123"}
    assert record.body["intercom_lead/id"] == lead_id
    assert record.body["intercom_lead/email"] == "bob@rei.com"
    assert record.body["intercom_lead/name"] == "Bob"
    assert record.body["name"] == {"operation": "setIfNull", "value": "Bob"}
    assert record.body["intercom_lead/tags"] == ["Lead Segment 1", "Lead Segment 3"]

    assert _actions(s1_connector, "lead") == [("outgoing.user.success", "")]
    event_rows = _actions(s1_connector, "event")
    assert event_rows.count(("outgoing.event.success", "")) == 3
    assert ("outgoing.event.skip", "event_not_whitelisted") in event_rows
    assert ("outgoing.event.skip", "event_from_intercom") in event_rows
    skipped = SyncLog.objects.filter(connector=s1_connector, entity="event", status=SyncLog.Status.SKIPPED)
    assert all(row.message for row in skipped), "a skip without a human reason"
    notification.refresh_from_db()
    assert notification.status == DeliveryStatus.DONE and notification.processed_messages == [0]


# --- S2 -------------------------------------------------------------------------------------------


def test_s2_export_as_users_creates_the_user_and_links_its_company(connector, intercom_sandbox, recording_firehose):
    connector.send_batch_as = "Users"
    connector.link_users_in_service = True
    connector.link_users_in_hull = True
    connector.save()
    add_mapping(connector, Entity.USER, "intercom_user/job_title", "job title")
    message = user_message(
        {"id": "u1", "email": "bob@rei.com", "external_id": "user_external_id_1", "name": "Bob", "traits_intercom_user/job_title": "sales"},
        account={"id": "a1", "external_id": "account_external_id_1", "domain": "rei.com"},
        account_segments=[],
    )
    notification_process(notification=store_notification(connector, [message], is_export=True))

    [user] = intercom_sandbox.contacts(role="user")
    [company] = intercom_sandbox.companies()
    made = calls(intercom_sandbox)
    # external_id first, read directly (never lagged, unique among users: absent means create, no
    # search by email), then the create; the custom attribute with a space did not exist: created
    # (typed from the value), push retried once.
    assert made[:5] == [
        ("GET", "/contacts/find_by_external_id/user_external_id_1"),
        ("POST", "/contacts"),
        ("POST", "/data_attributes"),
        ("POST", "/contacts"),
        ("POST", "/companies"),
    ]
    assert intercom_sandbox.calls[2].body == {"name": "job title", "model": "contact", "data_type": "string"}
    assert intercom_sandbox.calls[3].body == {
        "role": "user",
        "email": "bob@rei.com",
        "external_id": "user_external_id_1",
        "custom_attributes": {"job title": "sales"},
    }
    assert intercom_sandbox.calls[4].body == {"company_id": "account_external_id_1", "website": "rei.com"}
    assert ("POST", f"/contacts/{user['id']}/companies") in made
    assert intercom_sandbox.calls[made.index(("POST", f"/contacts/{user['id']}/companies"))].body == {"id": company["id"]}

    [user_record] = recording_firehose.of_type("traits")
    assert user_record.claims == {
        "anonymous_id": f"intercom-user:user-{user['id']}",
        "id": "u1",
        "email": "bob@rei.com",
        "external_id": "user_external_id_1",
    }
    assert user_record.body["intercom_user/id"] == user["id"]
    [account_record] = recording_firehose.of_type("account_traits")
    assert account_record.claims == {
        "anonymous_id": f"intercom:{company['id']}",
        "id": "a1",
        "external_id": "account_external_id_1",
        "domain": "rei.com",
    }
    assert account_record.body["intercom/id"] == company["id"]
    assert account_record.body["intercom/company_id"] == "account_external_id_1"
    assert _actions(connector) == [("outgoing.account.success", ""), ("outgoing.user.success", "")]
    assert IdentityLink.objects.get(connector=connector, entity="company").intercom_id == company["id"]


# --- S3 -------------------------------------------------------------------------------------------


def test_s3_ambiguous_lookup_is_an_error_naming_the_candidates_and_writes_nothing(connector, intercom_sandbox, recording_firehose):
    connector.synchronized_lead_segments = ["s1"]
    connector.save()
    add_mapping(connector, Entity.LEAD, "name", "name")
    first = intercom_sandbox.add_contact(role="lead", email="bob@rei.com")
    second = intercom_sandbox.add_contact(role="lead", email="bob@rei.com")
    message = user_message({"id": "123", "email": "bob@rei.com", "name": "Bob"}, segments=[segment("s1")])

    notification_process(notification=store_notification(connector, [message]))

    assert calls(intercom_sandbox) == [("POST", "/contacts/search")]
    assert recording_firehose.records == []
    [row] = SyncLog.objects.filter(connector=connector)
    assert (row.action, row.entity, row.reason) == ("outgoing.user.error", "lead", "ambiguous_identity")
    assert sorted(row.data["candidates"]) == sorted([first["id"], second["id"]])
    assert first["id"] in row.message and second["id"] in row.message


# --- S4 -------------------------------------------------------------------------------------------


def test_s4_stored_id_is_updated_without_search_and_arrays_are_json_encoded(connector, intercom_sandbox, recording_firehose):
    connector.synchronized_user_segments = ["s1"]
    connector.save()
    add_mapping(connector, Entity.USER, "description", "c_description")
    add_mapping(connector, Entity.USER, "job_title", "job_title")
    intercom_sandbox.add_data_attribute("c_description")
    intercom_sandbox.add_data_attribute("job_title")
    existing = intercom_sandbox.add_contact(role="user", email="bob@rei.com", name="Bob")
    message = user_message(
        {
            "id": "123",
            "email": "bob@rei.com",
            "traits_intercom_user/id": existing["id"],
            "traits_description": ["a", "description", "list"],
            "traits_job_title": "sales",
            "traits_intercom_user/tags": ["s1"],  # already tagged with its segment: no tag call
        },
        segments=[segment("s1")],
        changes={"user": {"traits_description": [None, ["a", "description", "list"]]}},
    )
    notification_process(notification=store_notification(connector, [message]))

    assert calls(intercom_sandbox) == [("PUT", f"/contacts/{existing['id']}")]
    assert intercom_sandbox.calls[0].body == {
        "email": "bob@rei.com",
        "role": "user",
        "custom_attributes": {"c_description": '["a", "description", "list"]', "job_title": "sales"},
    }
    [record] = recording_firehose.of_type("traits")
    assert record.body["intercom_user/id"] == existing["id"]
    assert _actions(connector) == [("outgoing.user.success", "")]


# --- S5 -------------------------------------------------------------------------------------------


@pytest.fixture
def converting(connector):
    connector.convert_leads = True
    connector.synchronized_user_segments = ["s1"]
    connector.save()
    add_mapping(connector, Entity.USER, "name", "name")
    return connector


def test_s5_lead_conversion_merges_the_lead_into_the_user(converting, intercom_sandbox, recording_firehose):
    lead = intercom_sandbox.add_contact(role="lead", email="bob@rei.com")
    message = user_message(
        {"id": "123", "email": "bob@rei.com", "external_id": "ext-1", "name": "Bob", "traits_intercom_lead/id": lead["id"]},
        segments=[segment("s1")],
    )
    notification_process(notification=store_notification(converting, [message]))

    [user] = intercom_sandbox.contacts(role="user")
    merge = next(c for c in intercom_sandbox.calls if c.path == "/contacts/merge")
    assert merge.body == {"from": lead["id"], "into": user["id"]}
    assert intercom_sandbox.contacts(role="lead") == []
    [record] = recording_firehose.of_type("traits")
    assert record.body["intercom_lead/lead_converted"] is True
    row = SyncLog.objects.get(connector=converting, entity="user")
    assert row.data["conversion"] == {"converted": True, "lead_id": lead["id"], "user_id": user["id"]}


def test_s5_failed_conversion_is_recorded_and_not_marked_converted(converting, intercom_sandbox, recording_firehose):
    message = user_message(
        {"id": "123", "email": "bob@rei.com", "name": "Bob", "traits_intercom_lead/id": "5f22000000000000000000aa"},
        segments=[segment("s1")],
    )
    notification_process(notification=store_notification(converting, [message]))

    assert ("POST", "/contacts/merge") in calls(intercom_sandbox)
    [record] = recording_firehose.of_type("traits")
    assert "intercom_lead/lead_converted" not in record.body
    row = SyncLog.objects.get(connector=converting, entity="user")
    assert row.action == "outgoing.user.success"
    assert row.data["conversion"]["converted"] is False and row.data["conversion"]["error"]


# --- S6 -------------------------------------------------------------------------------------------


def test_s6_account_update_upserts_the_company_with_tags(connector, intercom_sandbox, recording_firehose):
    connector.synchronized_account_segments = ["as1"]
    connector.save()
    add_mapping(connector, Entity.COMPANY, "domain", "website")
    add_mapping(connector, Entity.COMPANY, "intercom/monthly_spend", "monthly_spend")
    add_mapping(connector, Entity.COMPANY, "intercom/monthly_spend", "custom_monthly_spend")
    add_mapping(connector, Entity.COMPANY, "intercom/size", "size")
    intercom_sandbox.add_data_attribute("custom_monthly_spend", data_type="string", model="company")
    intercom_sandbox.add_tag("Account Segment 4")
    account = {
        "id": "a1",
        "external_id": "account_external_id_1",
        "domain": "rei.com",
        "intercom/tags": ["Account Segment 2", "Account Segment 3", "Intercom Tag 1", "Intercom Tag 2"],
        "intercom/monthly_spend": 500,
        "intercom/size": 50,
    }
    message = account_message(
        account,
        account_segments=[segment("as1", "Account Segment 1", "accounts_segment"), segment("as2", "Account Segment 2", "accounts_segment")],
        changes={
            "account": {"intercom/monthly_spend": [100, 500]},
            "account_segments": {"left": [segment("as4", "Account Segment 4", "accounts_segment"), segment("as5", "Account Segment 5", "accounts_segment")]},
        },
    )
    notification_process(notification=store_notification(connector, [message], channel="account:update"))

    [company] = intercom_sandbox.companies()
    # The company's custom attribute types are read first: values are sent as Intercom types them.
    assert [(c.method, c.path) for c in intercom_sandbox.calls[:2]] == [("GET", "/data_attributes"), ("POST", "/companies")]
    upsert = intercom_sandbox.calls[1]
    assert upsert.body == {
        "website": "rei.com",
        "monthly_spend": 500,
        "size": 50,
        "company_id": "account_external_id_1",
        "custom_attributes": {"custom_monthly_spend": "500"},  # a string attribute in Intercom: sent as a string
    }
    tag_posts = [c.body for c in intercom_sandbox.calls if c.method == "POST" and c.path == "/tags"]
    assert tag_posts == [
        {"name": "Account Segment 1", "companies": [{"id": company["id"]}]},
        {"name": "Account Segment 4", "companies": [{"id": company["id"], "untag": True}]},
    ]  # Segment 5 has no tag in Intercom: nothing to remove
    [record] = recording_firehose.of_type("account_traits")
    assert record.claims == {
        "anonymous_id": f"intercom:{company['id']}",
        "id": "a1",
        "external_id": "account_external_id_1",
        "domain": "rei.com",
    }
    assert record.body["intercom/id"] == company["id"]
    assert _actions(connector) == [("outgoing.account.success", "")]


# --- S10 ------------------------------------------------------------------------------------------


def test_s10_ship_update_creates_the_missing_outgoing_attributes(connector, intercom_sandbox, recording_firehose):
    add_mapping(connector, Entity.USER, "name", "name")
    add_mapping(connector, Entity.USER, "description", "c_description")
    add_mapping(connector, Entity.USER, "job_title", "user job title")
    add_mapping(connector, Entity.LEAD, "job_title", "lead job title")
    add_mapping(connector, Entity.COMPANY, "description", "company description")
    add_mapping(connector, Entity.COMPANY, "trial_ends_at", "trial_ends_at")
    add_mapping(connector, Entity.USER, "last_login_at", "last_login_at")
    intercom_sandbox.add_data_attribute("c_description")
    notification = store_notification(connector, [{"id": connector.hull_id}], channel="ship:update")

    notification_process(notification=notification)

    created = [c.body for c in intercom_sandbox.calls if c.method == "POST" and c.path == "/data_attributes"]
    assert created == [
        {"name": "user job title", "model": "contact", "data_type": "string"},
        {"name": "last_login_at", "model": "contact", "data_type": "date"},
        {"name": "lead job title", "model": "contact", "data_type": "string"},
        {"name": "company description", "model": "company", "data_type": "string"},
        # typed like the contact's: Intercom types company custom attributes by data_type too
        {"name": "trial_ends_at", "model": "company", "data_type": "date"},
    ]
    assert recording_firehose.records == []
    notification.refresh_from_db()
    assert notification.status == DeliveryStatus.DONE
    # Saved again: nothing left to create.
    intercom_sandbox.calls.clear()
    notification_process(notification=store_notification(connector, [{}], channel="ship:update"))
    assert [c for c in intercom_sandbox.calls if c.method == "POST"] == []
    assert json.dumps(created)  # bodies are plain JSON
