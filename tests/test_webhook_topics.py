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
from tests.incoming_support import RecordingFirehose, firehose, intercom, seed_contact, seed_tag  # noqa: F401
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
def deliver(client, connector, intercom, firehose, django_capture_on_commit_callbacks):
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


def test_conversation_user_created__lead(deliver, intercom):
    """The contact reference has no role and the lookup fails (the lead is gone): the payload's
    `source.author.type: lead` decides, not a guessed "user"."""
    records = deliver("conversation_user_created__lead")
    event = _conversation_event(records, "User started conversation", "conversation.user.created", 1734537511, V2_LEAD)
    assert event["claims"] == {"anonymous_id": f"intercom-lead:lead-{V2_LEAD}"}
    assert ("GET", f"/contacts/{V2_LEAD}") in [(c.method, c.path) for c in intercom.calls]
    assert "ip" not in event["context"]  # 2.x payloads give no IP

def test_conversation_rating_added(deliver, connector):
    # No Hull event; with support context on, the rating becomes the person's traits.
    records = deliver("conversation_rating_added")
    assert records.records == []
    assert SyncLog.objects.get().reason == "support_context_off"
    connector.support_context_traits = True
    connector.save()
    WebhookDelivery.objects.all().delete()
    records = deliver("conversation_rating_added")
    traits = only(records.records, "traits")
    assert traits["traits"]["intercom_user/last_conversation_rating"] == 4
    assert traits["traits"]["intercom_user/last_conversation_remark"] == "Quick and kind"
    assert traits["traits"]["intercom_user/first_admin_reply_seconds"] == 120


def _subscriptions(intercom, attached: bool) -> str:
    """A user with a Newsletters (opt-out) subscription type; returns the type's id. The granular payload is
    undocumented: the handler reads the contact's subscriptions from the API."""
    from sandbox.intercom.models import Contact, SubscriptionType

    intercom.add_contact("user", intercom_id=V2_USER, email="joe@example.com", external_id="70")
    newsletters = intercom.add_subscription_type("Newsletters", consent_type="opt_out")
    if attached:
        SubscriptionType.objects.get(workspace=intercom.workspace, type_id=newsletters["id"]).contacts.add(
            Contact.objects.get(workspace=intercom.workspace, intercom_id=V2_USER)
        )
    return newsletters["id"]


def test_granular_unsubscribe(deliver, intercom):
    type_id = _subscriptions(intercom, attached=True)  # attached to an opt-out type: unsubscribed
    records = deliver("granular_unsubscribe")
    assert only(records.records, "traits")["traits"] == {"intercom_user/subscription_newsletters": False}
    event = only(records.records, "track")
    assert event["event"] == "Subscription changed"
    assert event["properties"] == {"subscription_type": "Newsletters", "subscribed": False, "consent_type": "opt_out"}
    assert event["event_id"] == f"{V2_USER}-granular.unsubscribe-1734541300-{type_id}"


def test_granular_subscribe(deliver, intercom):
    _subscriptions(intercom, attached=False)
    records = deliver("granular_subscribe")
    assert only(records.records, "traits")["traits"] == {"intercom_user/subscription_newsletters": True}
    assert only(records.records, "track")["properties"]["subscribed"] is True


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
    assert "ip" not in event["context"]  # a user's event: no IP is made up


def test_user_email_updated__lead(deliver, connector):
    """API 1.x `user.email.updated` carrying a lead: the item decides the role, and the lead's
    1.x `user_id` (a visitor id) is never a Hull `external_id` claim."""
    call = only(deliver("user_email_updated__lead").records, "traits")
    assert call["claims"] == {"email": "visitor@rei.com", "anonymous_id": f"intercom-lead:lead-{LEAD_ID}"}
    assert call["traits"]["intercom_lead/email"] == "visitor@rei.com"
    assert not any(key.startswith("intercom_user/") for key in call["traits"])
    link = IdentityLink.objects.get(intercom_id=LEAD_ID)
    assert (link.entity, link.external_id) == ("lead", "")


def test_user_unsubscribed__lead(deliver):
    records = deliver("user_unsubscribed__lead")
    call = only(records.records, "traits")
    assert "external_id" not in call["claims"]
    assert call["traits"]["intercom_lead/unsubscribed_from_emails"] is True
    event = only(records.records, "track")
    assert event["claims"]["anonymous_id"] == f"intercom-lead:lead-{LEAD_ID}"
    assert event["context"]["ip"] == "93.184.216.34"  # the IP the 1.x lead payload gives


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


def test_user_tag_created(deliver, intercom):
    seed_contact(intercom, USER_ID, tags={"1": "Tag1", "4406231": "VIP"})
    records = deliver("user_tag_created")
    assert only(records.records, "traits")["traits"] == {"intercom_user/tags": ["Tag1", "VIP"]}
    event = only(records.records, "track")
    assert (event["event"], event["properties"]) == ("Added Tag", {"topic": "user.tag.created", "tag": "VIP"})
    assert event["event_id"] == f"{USER_ID}-user.tag.created-1596662517-4406231"


def test_user_tag_deleted(deliver, intercom):
    seed_contact(intercom, USER_ID)
    records = deliver("user_tag_deleted")
    assert only(records.records, "traits")["traits"] == {"intercom_user/tags": []}
    assert only(records.records, "track")["event"] == "Removed Tag"


def test_contact_tag_created(deliver, intercom, connector):
    # A tag named like a Hull segment mirrors that segment: tags refreshed, no event.
    HullSegment.objects.create(connector=connector, kind="user", hull_id="s1", name="vip")
    seed_contact(intercom, LEAD_ID, role="lead")
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
    """The item is a `contact_unsubscribe` wrapping the contact: the contact is unwrapped."""
    records = deliver("contact_unsubscribed")
    assert only(records.records, "track")["event"] == "Unsubscribed from emails"
    call = only(records.records, "traits")
    assert call["claims"] == {"external_id": "70", "email": "joe@example.com", "anonymous_id": f"intercom-user:user-{V2_USER}"}
    assert call["traits"]["intercom_user/unsubscribed_from_emails"] is True
    assert call["traits"]["intercom_user/email"] == "joe@example.com"


def test_contact_unarchive(deliver):
    traits = only(deliver("contact_unarchive").records, "traits")["traits"]
    assert traits["intercom_user/deleted_at"] is None
    assert traits["intercom_user/id"] == V2_USER


def test_contact_unarchived(deliver):
    """The name Intercom really sends: unarchiving clears `deleted_at` in Hull."""
    traits = only(deliver("contact_unarchived").records, "traits")["traits"]
    assert traits["intercom_user/deleted_at"] is None
    assert traits["intercom_user/id"] == V2_USER


def test_unarchived_and_unarchive_whitelist_each_other(connector):
    from sync.incoming.topics import topic_is_whitelisted

    connector.incoming_events = ["contact.unarchive"]
    assert topic_is_whitelisted(connector, "contact.unarchived")


def test_contact_user_updated__deleted(deliver, connector):
    """The contact was deleted (or merged) before the delivery was read: every enrichment call
    answers 404. What the payload has is written, the lists it only names by id are left alone,
    and the SyncLog row says what could not be read: no failure, no retry."""
    records = deliver("contact_user_updated__deleted")
    call = only(records.records, "traits")
    assert call["traits"]["intercom_user/email"] == "joe@example.com"
    assert call["traits"]["intercom_user/id"] == V2_USER
    assert "intercom_user/tags" not in call["traits"] and "intercom_user/companies" not in call["traits"]
    log = SyncLog.objects.get()
    assert (log.status, log.action) == ("success", "incoming.user.success")
    assert log.data["not_enriched"] == ["tags", "companies"]
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DONE


def test_contact_user_tag_created(deliver, intercom):
    seed_contact(intercom, V2_USER, tags={"1287": "independent"})
    records = deliver("contact_user_tag_created")
    assert only(records.records, "traits")["traits"] == {"intercom_user/tags": ["independent"]}
    assert only(records.records, "track")["event_id"] == f"{V2_USER}-contact.user.tag.created-1734540010-1287"


def test_contact_user_tag_deleted(deliver, intercom):
    seed_contact(intercom, V2_USER)
    assert only(deliver("contact_user_tag_deleted").records, "track")["event"] == "Removed Tag"


def test_contact_lead_tag_created(deliver, intercom):
    seed_contact(intercom, V2_LEAD, role="lead")
    records = deliver("contact_lead_tag_created")
    assert only(records.records, "track")["claims"]["anonymous_id"] == f"intercom-lead:lead-{V2_LEAD}"
    assert only(records.records, "traits")["traits"] == {"intercom_lead/tags": []}


def test_contact_lead_tag_deleted(deliver, intercom):
    seed_contact(intercom, V2_LEAD, role="lead")
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


def test_company_updated__tag_ids(deliver, intercom):
    """Webhook companies carry `tag_ids`: they are named from the workspace's tags."""
    seed_tag(intercom, "4406231", "VIP")
    call = only(deliver("company_updated__tag_ids").records, "account_traits")
    assert call["traits"]["intercom/tags"] == ["VIP"]


def test_company_tag_ids_that_cannot_be_named_leave_the_tags_alone(deliver):
    """Never write a list we did not read: no `intercom/tags: []` wiping the account's tags."""
    call = only(deliver("company_updated__tag_ids").records, "account_traits")
    assert "intercom/tags" not in call["traits"]
    assert call["traits"]["intercom/id"] == "531ee472cce572a6ec000006"


def test_company_deleted(deliver):
    call = only(deliver("company_deleted").records, "account_traits")
    assert call["traits"] == {"intercom/deleted_at": 1734540030, "intercom/id": None}


def test_ping(deliver):
    assert deliver("ping").records == []
    delivery = WebhookDelivery.objects.get()
    assert (delivery.topic, delivery.status) == ("ping", DeliveryStatus.IGNORED)
