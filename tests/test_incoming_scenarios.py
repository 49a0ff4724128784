"""Scenarios S7-S9 of docs/intercom-behaviour.md#test-scenarios, with the real IntercomClient
against the Intercom sandbox (HTTP level, contract-checked) and the firehose recorded."""

from __future__ import annotations

import json

from django.utils import timezone

from sync.incoming.fetch import fetch_run_to_end
from sync.models import FieldMapping, IdentityLink, SyncCursor, SyncLog, WebhookDelivery
from tests.incoming_support import firehose  # noqa: F401
from tests.test_webhook_topics import SECRET, fixture_bytes
from webhooks.intercom_auth import intercom_signature


def test_s7_incremental_user_fetch(connector, intercom_sandbox, firehose):
    """Tags beyond the embedded 10, companies and segments through the API, nulls written,
    a custom attribute by dotted path, the link to the one company, and skips of old contacts."""
    FieldMapping.objects.create(connector=connector, entity="user", direction="incoming",
                                hull_attribute="intercom_user/job_title", intercom_attribute="custom_attributes.job_title")
    FieldMapping.objects.create(connector=connector, entity="user", direction="incoming",
                                hull_attribute="intercom_user/segments", intercom_attribute="segments")
    connector.link_users_in_hull = True
    connector.save()
    now = int(timezone.now().timestamp())
    liza = intercom_sandbox.add_contact(
        role="user", email="liza@rei.com", external_id="liza-1", name="Liza", updated_at=now - 60,
        custom_attributes={"job_title": "Buyer"},
    )
    roberto = intercom_sandbox.add_contact(role="user", email="roberto@rei.com", updated_at=now - 120)
    intercom_sandbox.add_contact(role="user", email="old@rei.com", updated_at=now - 5 * 86400)
    intercom_sandbox.add_contact(role="lead", email="lead@rei.com", updated_at=now - 60)
    api = intercom_sandbox.client()
    for n in range(12):
        tag = intercom_sandbox.add_tag(f"Tag{n}")
        api.tag_contact(liza["id"], tag["id"])
    company = intercom_sandbox.add_company("rei-1", name="REI", contact_ids=[liza["id"]])
    intercom_sandbox.calls.clear()

    cursor = fetch_run_to_end(connector=connector, kind="incremental", stream="users")

    calls = firehose.of_type("traits")
    by_id = {c["traits"]["intercom_user/id"]: c for c in calls}
    assert set(by_id) == {liza["id"], roberto["id"]}
    liza_traits = by_id[liza["id"]]["traits"]
    assert by_id[liza["id"]]["claims"] == {"external_id": "liza-1", "email": "liza@rei.com", "anonymous_id": f"intercom-user:user-{liza['id']}"}
    assert sorted(liza_traits["intercom_user/tags"]) == sorted(f"Tag{n}" for n in range(12))
    assert liza_traits["intercom_user/companies"] == ["REI"]
    assert liza_traits["intercom_user/segments"] == []
    assert liza_traits["intercom_user/job_title"] == "Buyer"
    assert liza_traits["name"] == {"operation": "setIfNull", "value": "Liza"}
    roberto_traits = by_id[roberto["id"]]["traits"]
    assert roberto_traits["intercom_user/user_id"] is None
    assert roberto_traits["intercom_user/phone"] is None
    assert roberto_traits["intercom_user/tags"] == []
    assert "name" not in roberto_traits
    [link] = firehose.of_type("link_account")
    assert link["account"] == {"anonymous_id": f"intercom:{company['id']}"}
    paths = [(c.method, c.path) for c in intercom_sandbox.calls]
    assert ("GET", f"/contacts/{liza['id']}/tags") in paths  # more than the embedded 10
    assert ("GET", f"/contacts/{liza['id']}/companies") in paths
    assert cursor.status == "done" and cursor.entities == 2
    assert SyncLog.objects.filter(action="incoming.user.success").count() == 2
    assert IdentityLink.objects.get(intercom_id=liza["id"]).last_ingested_updated_at is not None


def test_s8_user_created_webhook(client, connector, intercom_sandbox, firehose, django_capture_on_commit_callbacks):
    """A 1.x user.created: ISO dates, location_data, names of companies and tags from the payload."""
    body = fixture_bytes("user_created")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/intercom/{connector.slug}/webhooks", data=body, content_type="application/json",
                               HTTP_X_HUB_SIGNATURE=intercom_signature(SECRET, body))
    assert response.status_code == 200
    [call] = firehose.of_type("traits")
    item = json.loads(body)["data"]["item"]
    assert call["claims"] == {"external_id": "2345-ab", "email": "liza@rei.com", "anonymous_id": f"intercom-user:user-{item['id']}"}
    assert call["traits"]["intercom_user/created_at"] == 1596555122
    assert call["traits"]["intercom_user/location_region_name"] == "Washington"
    assert call["traits"]["intercom_user/companies"] == ["REI"]
    assert not firehose.of_type("link_account")
    assert intercom_sandbox.calls == []  # names were in the payload: no API call
    assert WebhookDelivery.objects.get().status == "done"


def test_s9_user_deleted_webhook(client, connector, firehose, django_capture_on_commit_callbacks):
    body = fixture_bytes("user_deleted")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/intercom/{connector.slug}/webhooks", data=body, content_type="application/json",
                    HTTP_X_HUB_SIGNATURE=intercom_signature(SECRET, body))
    assert firehose.of_type("traits") == [
        {
            "type": "traits",
            "claims": {"anonymous_id": "intercom-user:user-5ee3d2c1b0a9f8e7d6c5bd68"},
            "traits": {"intercom_user/deleted_at": 1596662517, "intercom_user/id": None},
        }
    ]


def test_s9_user_deleted_not_whitelisted_makes_no_call(client, connector, firehose, django_capture_on_commit_callbacks):
    connector.incoming_events = ["user.created", "contact.created"]
    connector.save()
    body = fixture_bytes("user_deleted")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/intercom/{connector.slug}/webhooks", data=body, content_type="application/json",
                    HTTP_X_HUB_SIGNATURE=intercom_signature(SECRET, body))
    assert firehose.records == []
    assert WebhookDelivery.objects.get().status == "ignored"


def test_fetch_all_users_through_the_sandbox_pages_of_150(connector, intercom_sandbox, firehose):
    for n in range(160):
        intercom_sandbox.add_contact(role="user", email=f"u{n}@example.com")
    from sync.incoming.fetch import connector_fetch_all

    connector_fetch_all(connector=connector, stream="users", enqueue=False)
    cursor = fetch_run_to_end(connector=connector, kind=SyncCursor.Kind.FETCH_ALL, stream="users")
    assert (cursor.status, cursor.pages, cursor.entities, cursor.total_estimate) == ("done", 2, 160, 160)
    searches = [c for c in intercom_sandbox.calls if c.path == "/contacts/search"]
    assert searches[0].body["pagination"]["per_page"] == 150
    assert "starting_after" in searches[1].body["pagination"]


def test_fetch_all_companies_through_the_sandbox_scroll(connector, intercom_sandbox, firehose):
    member = intercom_sandbox.add_contact(role="user", email="member@example.com")
    for n in range(7):
        # Intercom lists only companies with at least one contact.
        intercom_sandbox.add_company(f"co-{n}", name=f"Company {n}", contact_ids=[member["id"]])
    from sync.incoming.fetch import connector_fetch_all

    connector_fetch_all(connector=connector, stream="companies", enqueue=False)
    cursor = fetch_run_to_end(connector=connector, kind=SyncCursor.Kind.FETCH_ALL, stream="companies")
    assert (cursor.status, cursor.entities) == ("done", 7)
    assert {c.path for c in intercom_sandbox.calls} == {"/companies/scroll"}
    assert len(firehose.of_type("account_traits")) == 7
