"""One test per recorded webhook fixture (Zulip style): post it signed, assert the Hull records.

Fixtures live in tests/fixtures/intercom/webhooks/<topic with dots as underscores>[__variant].json
and are read and signed as bytes, exactly as Intercom signs what it sends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sync.incoming.topics import IGNORED_TOPICS, SUPPORTED_TOPICS, TOPIC_HANDLERS
from sync.models import DeliveryStatus, HullSegment, IdentityLink, SyncLog, WebhookDelivery
from tests.test_incoming_fakes import FakeIntercom, RecordingFirehose, fake_intercom, firehose  # noqa: F401
from webhooks.intercom_auth import intercom_signature

FIXTURES = Path(__file__).parent / "fixtures" / "intercom" / "webhooks"
SECRET = "sandbox-client-secret"
USER_ID = "5f29a7e3b6a3b8e5c2d1ef6e"
LEAD_ID = "5f2a1c0e8b1a4c6d7e9f0a12"
V2_USER = "6762f0dd1bb69f9f2193bb83"
V2_LEAD = "6762f1261bb69f9f2193bba7"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def post_fixture(client: Any, connector: Any, name: str, django_capture_on_commit_callbacks: Any) -> Any:
    body = fixture_bytes(name)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/intercom/{connector.slug}/webhooks",
            data=body,
            content_type="application/json",
            HTTP_X_HUB_SIGNATURE=intercom_signature(SECRET, body),
        )
    assert response.status_code == 200, response.content
    return response


@pytest.fixture
def deliver(client, connector, fake_intercom, firehose, django_capture_on_commit_callbacks):
    """Every topic whitelisted; returns a function posting a fixture and giving the firehose records."""
    connector.incoming_events = ["*"]
    connector.save()

    def _deliver(name: str) -> RecordingFirehose:
        post_fixture(client, connector, name, django_capture_on_commit_callbacks)
        return firehose

    return _deliver


def only(records: list[dict], kind: str) -> dict:
    matching = [r for r in records if r["type"] == kind]
    assert len(matching) == 1, records
    return matching[0]


# --- the guard --------------------------------------------------------------------------------


def test_every_registry_topic_has_a_fixture_and_a_test():
    stems = {path.stem.split("__")[0] for path in FIXTURES.glob("*.json")}
    missing = {topic for topic in TOPIC_HANDLERS if topic.replace(".", "_") not in stems}
    assert not missing, f"topics without a fixture: {sorted(missing)}"
    tests = {name for name in globals() if name.startswith("test_")}
    untested = [p.stem for p in FIXTURES.glob("*.json") if f"test_{p.stem}" not in tests]
    assert not untested, f"fixtures without a test: {untested}"


def test_registry_lists_are_consistent():
    assert SUPPORTED_TOPICS == list(TOPIC_HANDLERS)
    assert not set(SUPPORTED_TOPICS) & set(IGNORED_TOPICS)
    assert all(reason.strip() for reason in IGNORED_TOPICS.values())


# --- conversations ----------------------------------------------------------------------------


def _conversation_event(records: RecordingFirehose, name: str, topic: str, created_at: int, contact: str = USER_ID) -> dict:
    event = only(records.records, "track")
    assert event["event"] == name
    assert event["event_id"] == f"{contact}-{topic}-{created_at}"
    assert event["context"]["source"] == "intercom"
    assert event["context"]["event_type"] == "conversation"
    assert event["properties"]["topic"] == topic
    return event


def test_conversation_user_created(deliver, connector):
    records = deliver("conversation_user_created")
    event = _conversation_event(records, "User started conversation", "conversation.user.created", 1596634905)
    assert event["claims"] == {"external_id": "2345-ab", "email": "liza@rei.com", "anonymous_id": f"intercom-user:user-{USER_ID}"}
    assert event["properties"]["message"] == "<p>Where is my order?</p>"
    assert event["properties"]["initiated"] == "user"
    assert event["created_at"] == "2020-08-05T13:41:45Z"
    assert SyncLog.objects.get(action="incoming.event.success").data["event"] == "User started conversation"


def test_conversation_user_created__v2(deliver, connector):
    records = deliver("conversation_user_created__v2")
    event = _conversation_event(records, "User started conversation", "conversation.user.created", 1734537511, V2_USER)
    assert event["claims"]["anonymous_id"] == f"intercom-user:user-{V2_USER}"
    assert event["properties"] == {
        "topic": "conversation.user.created",
        "link": "https://app.intercom.com/a/apps/nrpsbkpc/conversations/503",
        "assignee_id": "991267715",
        "message": "Hi, can I change my plan?",
        "initiated": "user",
    }


def test_conversation_user_replied(deliver):
    event = _conversation_event(deliver("conversation_user_replied"), "User replied to conversation", "conversation.user.replied", 1596634990)
    assert event["properties"]["message"] == "<p>Any news?</p>"


def test_conversation_admin_replied(deliver):
    event = _conversation_event(deliver("conversation_admin_replied"), "Admin replied to conversation", "conversation.admin.replied", 1596635000)
    assert event["properties"]["message"] == "<p>It ships today.</p>"
    assert event["properties"]["initiated"] == "admin"


def test_conversation_admin_single_created(deliver):
    records = deliver("conversation_admin_single_created")
    event = _conversation_event(records, "Admin started conversation", "conversation.admin.single.created", 1596635001, LEAD_ID)
    # A lead: the lead's claims and anonymous id (Hull's admin-single-created-lead scenario).
    assert event["claims"] == {"email": "bob@rei.com", "anonymous_id": f"intercom-lead:lead-{LEAD_ID}"}
    assert event["properties"]["initiated"] == "admin"


def test_conversation_admin_assigned(deliver):
    event = _conversation_event(deliver("conversation_admin_assigned"), "Admin assigned conversation", "conversation.admin.assigned", 1596635010)
    assert event["properties"] == {
        "topic": "conversation.admin.assigned",
        "link": "https://app.intercom.com/a/apps/nrpsbkpc/conversations/27931178954",
        "assignee_name": "Andy",
        "assignee_email": "andy@gmail.com",
        "assignee_id": "3330619",
        "initiated": "admin",
        "to": USER_ID,
        "admin": "3330619",
    }


def test_conversation_admin_opened(deliver):
    event = _conversation_event(deliver("conversation_admin_opened"), "Admin opened conversation", "conversation.admin.opened", 1596635020)
    assert event["properties"]["admin"] == "3330619"


def test_conversation_admin_closed(deliver):
    event = _conversation_event(deliver("conversation_admin_closed"), "Admin closed conversation", "conversation.admin.closed", 1596635030)
    assert event["properties"]["admin"] == "3330619"


def test_conversation_admin_noted(deliver):
    event = _conversation_event(deliver("conversation_admin_noted"), "Admin added note to conversation", "conversation.admin.noted", 1596635040)
    assert event["properties"]["note"] == "<p>VIP customer</p>"
    assert event["properties"]["author"] == "Andy"


def test_conversation_admin_snoozed(deliver):
    _conversation_event(deliver("conversation_admin_snoozed"), "Admin snoozed conversation", "conversation.admin.snoozed", 1596635050)


def test_conversation_admin_unsnoozed(deliver):
    _conversation_event(deliver("conversation_admin_unsnoozed"), "Admin unsnoozed conversation", "conversation.admin.unsnoozed", 1596635060)


def test_conversation_part_tag_created(deliver):
    event = _conversation_event(deliver("conversation_part_tag_created"), "Conversation Part Tag Added", "conversation_part.tag.created", 1596635070)
    assert event["properties"]["tags_added"] == "Shipping"


def test_conversation_part_redacted(deliver):
    event = _conversation_event(deliver("conversation_part_redacted"), "Conversation Part Redacted", "conversation_part.redacted", 1596635080)
    assert event["properties"]["message"] == "<p>[redacted]</p>"


# --- contacts (1.x) ---------------------------------------------------------------------------


def test_user_created(deliver, connector):
    """S8: a 1.x user.created payload becomes one traits call on the user profile."""
    records = deliver("user_created")
    call = only(records.records, "traits")
    assert call["claims"] == {"external_id": "2345-ab", "email": "liza@rei.com", "anonymous_id": f"intercom-user:user-{USER_ID}"}
    traits = call["traits"]
    assert traits["intercom_user/created_at"] == 1596555122  # ISO rounded up
    assert traits["intercom_user/updated_at"] == 1596555122
    assert traits["intercom_user/location_city_name"] == "Seattle"
    assert traits["intercom_user/location_country_name"] == "United States"
    assert traits["intercom_user/companies"] == ["REI"]  # deduplicated, from the payload
    assert traits["intercom_user/tags"] == ["Tag1", "Tag2"]
    assert traits["intercom_user/social_profiles"] == ["https://twitter.com/liza", "https://facebook.com/liza"]
    assert traits["intercom_user/twitter_url"] == "https://twitter.com/liza"
    assert traits["intercom_user/facebook_url"] == "https://facebook.com/liza"
    assert traits["intercom_user/avatar"] == "https://static.intercomassets.com/avatars/liza.png"
    assert traits["intercom_user/id"] == USER_ID
    assert traits["intercom_user/user_id"] == "2345-ab"
    assert traits["intercom_user/owner_id"] is None  # nulls are written
    assert traits["name"] == {"operation": "setIfNull", "value": "Liza Minelli"}
    assert not records.of_type("link_account")  # 1.x company lists never link
    log = SyncLog.objects.get()
    assert (log.action, log.status, log.entity, log.intercom_id) == ("incoming.user.success", "success", "user", USER_ID)
    assert IdentityLink.objects.filter(entity="user", intercom_id=USER_ID).exists()


def test_contact_created(deliver):
    call = only(deliver("contact_created").records, "traits")
    assert call["claims"] == {"email": "bob@rei.com", "anonymous_id": f"intercom-lead:lead-{LEAD_ID}"}
    assert call["traits"]["intercom_lead/id"] == LEAD_ID
    assert call["traits"]["intercom_lead/tags"] == []
    assert call["traits"]["intercom_lead/companies"] == []
    assert not any(key.startswith("intercom_user/") for key in call["traits"])


def test_user_email_updated(deliver):
    call = only(deliver("user_email_updated").records, "traits")
    assert call["claims"]["email"] == "liza.minelli@rei.com"
    assert call["traits"]["intercom_user/email"] == "liza.minelli@rei.com"


def test_user_unsubscribed(deliver):
    records = deliver("user_unsubscribed")
    assert only(records.records, "traits")["traits"]["intercom_user/unsubscribed_from_emails"] is True
    event = only(records.records, "track")
    assert event["event"] == "Unsubscribed from emails"
    assert event["event_id"] == f"{USER_ID}-user.unsubscribed-1596662517"


def test_contact_added_email(deliver):
    records = deliver("contact_added_email")
    assert only(records.records, "traits")["traits"]["intercom_lead/email"] == "bob.dylan@rei.com"
    event = only(records.records, "track")
    assert event["event"] == "Updated email address"
    assert event["properties"] == {"topic": "contact.added_email", "email": "bob.dylan@rei.com"}
    assert event["claims"]["anonymous_id"] == f"intercom-lead:lead-{LEAD_ID}"


def test_contact_signed_up(deliver):
    calls = deliver("contact_signed_up").of_type("traits")
    assert calls[0]["claims"]["anonymous_id"] == f"intercom-user:user-{LEAD_ID}"
    assert calls[0]["traits"]["intercom_user/id"] == LEAD_ID
    assert calls[1] == {
        "type": "traits",
        "claims": {"email": "bob@rei.com", "anonymous_id": f"intercom-lead:lead-{LEAD_ID}"},
        "traits": {"intercom_lead/is_lead": False},
    }


def test_visitor_signed_up(deliver):
    call = only(deliver("visitor_signed_up").records, "traits")
    assert call["claims"] == {"email": "new@rei.com", "anonymous_id": "intercom-user:user-5f2b0c1d2e3f405162738495"}
    assert call["traits"]["intercom_user/user_id"] is None


def test_user_deleted(deliver, connector):
    """S9: deleted_at from the notification time, the id cleared, on the user profile only."""
    IdentityLink.objects.create(connector=connector, entity="user", intercom_id="5ee3d2c1b0a9f8e7d6c5bd68")
    call = only(deliver("user_deleted").records, "traits")
    assert call == {
        "type": "traits",
        "claims": {"anonymous_id": "intercom-user:user-5ee3d2c1b0a9f8e7d6c5bd68"},
        "traits": {"intercom_user/deleted_at": 1596662517, "intercom_user/id": None},
    }
    assert not IdentityLink.objects.filter(intercom_id="5ee3d2c1b0a9f8e7d6c5bd68").exists()


def test_user_deleted_with_mark_deleted_users_off_writes_nothing(deliver, connector):
    connector.mark_deleted_users = False
    connector.save()
    assert deliver("user_deleted").records == []
    assert SyncLog.objects.get().reason == "mark_deleted_users_off"


def test_user_deleted_not_whitelisted_is_stored_and_ignored(client, connector, firehose, django_capture_on_commit_callbacks):
    connector.incoming_events = ["user.created"]
    connector.save()
    post_fixture(client, connector, "user_deleted", django_capture_on_commit_callbacks)
    assert WebhookDelivery.objects.get().status == DeliveryStatus.IGNORED
    assert firehose.records == []


def test_user_tag_created(deliver, fake_intercom):
    fake_intercom.add_contact(USER_ID)
    fake_intercom.tags = {"1": "Tag1", "4406231": "VIP"}
    fake_intercom.contact_tags[USER_ID] = ["1", "4406231"]
    records = deliver("user_tag_created")
    assert only(records.records, "traits")["traits"] == {"intercom_user/tags": ["Tag1", "VIP"]}
    event = only(records.records, "track")
    assert (event["event"], event["properties"]) == ("Added Tag", {"topic": "user.tag.created", "tag": "VIP"})
    assert event["event_id"] == f"{USER_ID}-user.tag.created-1596662517-4406231"


def test_user_tag_deleted(deliver, fake_intercom):
    fake_intercom.add_contact(USER_ID)
    records = deliver("user_tag_deleted")
    assert only(records.records, "traits")["traits"] == {"intercom_user/tags": []}
    assert only(records.records, "track")["event"] == "Removed Tag"


def test_contact_tag_created(deliver, fake_intercom, connector):
    # A tag named like a Hull segment mirrors that segment: tags refreshed, no event.
    HullSegment.objects.create(connector=connector, kind="user", hull_id="s1", name="vip")
    fake_intercom.add_contact(LEAD_ID, role="lead")
    records = deliver("contact_tag_created")
    assert only(records.records, "traits")["claims"]["anonymous_id"] == f"intercom-lead:lead-{LEAD_ID}"
    assert records.of_type("track") == []


def test_contact_tag_deleted(deliver):
    # The contact is gone from Intercom: no tag list to refresh, the event still stands.
    records = deliver("contact_tag_deleted")
    assert records.of_type("traits") == []
    assert only(records.records, "track")["event"] == "Removed Tag"


# --- contacts (2.x) ---------------------------------------------------------------------------


def test_contact_user_created(deliver):
    call = only(deliver("contact_user_created").records, "traits")
    assert call["claims"] == {"external_id": "70", "email": "joe@example.com", "anonymous_id": f"intercom-user:user-{V2_USER}"}
    traits = call["traits"]
    assert traits["intercom_user/created_at"] == 1734537437
    assert traits["intercom_user/browser"] == "chrome"
    assert traits["intercom_user/location_city_name"] == "Dublin"
    assert traits["intercom_user/phone"] is None


def test_contact_lead_created(deliver):
    call = only(deliver("contact_lead_created").records, "traits")
    assert call["claims"] == {"email": "lead@example.com", "anonymous_id": f"intercom-lead:lead-{V2_LEAD}"}
    assert "name" not in call["traits"]  # a null name does not become setIfNull null


def test_contact_user_updated(deliver):
    call = only(deliver("contact_user_updated").records, "traits")
    assert call["traits"]["name"] == {"operation": "setIfNull", "value": "Joe Q. Bloggs"}
    assert call["traits"]["intercom_user/name"] == "Joe Q. Bloggs"


def test_contact_lead_updated(deliver):
    assert only(deliver("contact_lead_updated").records, "traits")["traits"]["intercom_lead/phone"] == "+353 1 555 0199"


def test_contact_lead_signed_up(deliver):
    calls = deliver("contact_lead_signed_up").of_type("traits")
    assert calls[0]["claims"]["anonymous_id"] == f"intercom-user:user-{V2_LEAD}"
    assert calls[1]["traits"] == {"intercom_lead/is_lead": False}


def test_contact_lead_added_email(deliver):
    records = deliver("contact_lead_added_email")
    assert only(records.records, "track")["event"] == "Updated email address"
    assert only(records.records, "traits")["traits"]["intercom_lead/email"] == "lead.new@example.com"


def test_contact_email_updated(deliver):
    records = deliver("contact_email_updated")
    assert only(records.records, "traits")["traits"]["intercom_user/email"] == "joe.new@example.com"
    assert records.of_type("track") == []


def test_contact_unsubscribed(deliver):
    records = deliver("contact_unsubscribed")
    assert only(records.records, "track")["event"] == "Unsubscribed from emails"
    assert only(records.records, "traits")["traits"]["intercom_user/unsubscribed_from_emails"] is True


def test_contact_unarchive(deliver):
    traits = only(deliver("contact_unarchive").records, "traits")["traits"]
    assert traits["intercom_user/deleted_at"] is None
    assert traits["intercom_user/id"] == V2_USER


def test_contact_user_tag_created(deliver, fake_intercom):
    fake_intercom.add_contact(V2_USER)
    fake_intercom.tags = {"1287": "independent"}
    fake_intercom.contact_tags[V2_USER] = ["1287"]
    records = deliver("contact_user_tag_created")
    assert only(records.records, "traits")["traits"] == {"intercom_user/tags": ["independent"]}
    assert only(records.records, "track")["event_id"] == f"{V2_USER}-contact.user.tag.created-1734540010-1287"


def test_contact_user_tag_deleted(deliver, fake_intercom):
    fake_intercom.add_contact(V2_USER)
    assert only(deliver("contact_user_tag_deleted").records, "track")["event"] == "Removed Tag"


def test_contact_lead_tag_created(deliver, fake_intercom):
    fake_intercom.add_contact(V2_LEAD, role="lead")
    records = deliver("contact_lead_tag_created")
    assert only(records.records, "track")["claims"]["anonymous_id"] == f"intercom-lead:lead-{V2_LEAD}"
    assert only(records.records, "traits")["traits"] == {"intercom_lead/tags": []}


def test_contact_lead_tag_deleted(deliver, fake_intercom):
    fake_intercom.add_contact(V2_LEAD, role="lead")
    assert only(deliver("contact_lead_tag_deleted").records, "track")["event"] == "Removed Tag"


def test_contact_deleted(deliver, connector):
    # The slim 2.x payload has no role: our IdentityLink says it was a lead.
    IdentityLink.objects.create(connector=connector, entity="lead", intercom_id="65f642bf674b9af4e9e46dd1")
    call = only(deliver("contact_deleted").records, "traits")
    assert call["claims"] == {"anonymous_id": "intercom-lead:lead-65f642bf674b9af4e9e46dd1"}
    assert call["traits"] == {"intercom_lead/deleted_at": 1734540020, "intercom_lead/id": None}


def test_contact_archived(deliver):
    call = only(deliver("contact_archived").records, "traits")
    assert call["traits"] == {"intercom_user/deleted_at": 1734540021, "intercom_user/id": None}


# --- companies --------------------------------------------------------------------------------


def test_company_created(deliver):
    call = only(deliver("company_created").records, "account_traits")
    assert call["claims"] == {
        "external_id": "5f16-qualification-company",
        "domain": "rei.com",
        "anonymous_id": "intercom:5f16ba0e2c3b5b6ad7c9304e",
    }
    assert call["traits"]["intercom/id"] == "5f16ba0e2c3b5b6ad7c9304e"
    assert call["traits"]["intercom/website"] == "rei.com"
    assert call["traits"]["intercom/tags"] == []
    assert call["traits"]["name"] == {"operation": "setIfNull", "value": "REI"}
    assert SyncLog.objects.get().action == "incoming.account.success"


def test_company_updated(deliver):
    call = only(deliver("company_updated").records, "account_traits")
    assert call["traits"]["intercom/tags"] == ["independent"]
    assert call["traits"]["intercom/company_id"] == "6"


def test_company_deleted(deliver):
    call = only(deliver("company_deleted").records, "account_traits")
    assert call["traits"] == {"intercom/deleted_at": 1734540030, "intercom/id": None}


def test_ping(deliver):
    assert deliver("ping").records == []
    delivery = WebhookDelivery.objects.get()
    assert (delivery.topic, delivery.status) == ("ping", DeliveryStatus.IGNORED)
