"""Legacy attribute mode end to end: a signed Intercom webhook in, the Hull firehose records out.

Through the real webhook view, task, transforms, FirehoseBatch (JWT-signed records) and the Hull
sandbox, so what is asserted is what Hull would receive.
"""

from __future__ import annotations

import pytest

from tests.test_webhook_topics import LEAD_ID, USER_ID, post_fixture

LEAD_VISITOR_ID = "a3f1c2d4-7e8b-4c2a-9d1e-1f2a3b4c5d6e"  # the 1.x lead's user_id in contact_created.json


@pytest.fixture
def legacy_connector(connector, intercom_sandbox, hull_sandbox):
    connector.legacy_attribute_mode = True
    connector.incoming_events = ["*"]
    connector.save()
    return connector


def records_of(hull_sandbox, kind: str) -> list:
    return [record for record in hull_sandbox.firehose_records if record.type == kind]


def test_an_incoming_lead_in_legacy_mode_writes_the_intercom_group_and_legacy_ids(
    client, legacy_connector, hull_sandbox, django_capture_on_commit_callbacks
):
    post_fixture(client, legacy_connector, "contact_created", django_capture_on_commit_callbacks)
    [traits] = records_of(hull_sandbox, "traits")
    assert traits.claims["io.hull.asUser"] == {"email": "bob@rei.com", "anonymous_id": f"intercom-lead:lead-{LEAD_ID}"}
    body = traits.body
    # The new groups are still written...
    assert body["intercom_lead/id"] == LEAD_ID and body["intercom_lead/email"] == "bob@rei.com"
    # ...and the legacy group, as the processor script wrote it for a lead.
    assert body["intercom/id"] == LEAD_ID
    assert body["intercom/email"] == "bob@rei.com"
    assert body["intercom/is_lead"] is True and body["intercom/anonymous"] is True
    assert body["intercom/lead_user_id"] == LEAD_VISITOR_ID
    assert body["intercom/user_id"] is None
    aliases = [record.body["anonymous_id"] for record in records_of(hull_sandbox, "alias")]
    assert f"intercom:{LEAD_ID}" in aliases
    assert f"intercom:{LEAD_VISITOR_ID}" in aliases
    # The alias of the browser snippet, in every mode.
    assert f"intercom-lead:lead-{LEAD_VISITOR_ID}" in aliases
    for record in records_of(hull_sandbox, "alias"):
        assert record.claims["io.hull.asUser"]["anonymous_id"] == f"intercom-lead:lead-{LEAD_ID}"
    assert not any(record.error for record in hull_sandbox.firehose_records)


def test_an_incoming_user_in_legacy_mode_is_neither_lead_nor_anonymous(
    client, legacy_connector, hull_sandbox, django_capture_on_commit_callbacks
):
    post_fixture(client, legacy_connector, "user_created", django_capture_on_commit_callbacks)
    [traits] = records_of(hull_sandbox, "traits")
    body = traits.body
    assert body["intercom_user/id"] == USER_ID and body["intercom/id"] == USER_ID
    assert body["intercom/user_id"] == "2345-ab"  # a user keeps its user_id
    assert body["intercom/is_lead"] is False and body["intercom/anonymous"] is False
    assert "intercom/lead_user_id" not in body
    aliases = [record.body["anonymous_id"] for record in records_of(hull_sandbox, "alias")]
    assert aliases == [f"intercom:{USER_ID}"]  # never intercom:<external id> for a user


def test_without_legacy_mode_nothing_of_the_intercom_group_is_written(
    client, connector, intercom_sandbox, hull_sandbox, django_capture_on_commit_callbacks
):
    connector.incoming_events = ["*"]
    connector.save()
    post_fixture(client, connector, "contact_created", django_capture_on_commit_callbacks)
    [traits] = records_of(hull_sandbox, "traits")
    assert not any(key.startswith("intercom/") for key in traits.body)
    aliases = [record.body["anonymous_id"] for record in records_of(hull_sandbox, "alias")]
    assert aliases == [f"intercom-lead:lead-{LEAD_VISITOR_ID}"]


def test_the_legacy_group_lands_on_the_hull_profile(client, legacy_connector, hull_sandbox, django_capture_on_commit_callbacks):
    post_fixture(client, legacy_connector, "contact_created", django_capture_on_commit_callbacks)
    profile = hull_sandbox.user(email="bob@rei.com")
    assert profile["traits_intercom/is_lead"] is True
    assert profile["traits_intercom/lead_user_id"] == LEAD_VISITOR_ID


def test_a_lead_with_a_known_users_email_does_not_flip_that_users_legacy_group(
    client, legacy_connector, hull_sandbox, django_capture_on_commit_callbacks
):
    """The Hull user is an Intercom user first; then a lead with the same email comes in.

    Hull merges the two on the email claim, so the processor script would have copied the
    user's traits: the lead must not write `intercom/is_lead: true` over the user's profile.
    """
    import json

    from sync.models import Entity, IdentityLink
    from tests.test_webhook_topics import SECRET, fixture_bytes
    from webhooks.intercom_auth import intercom_signature

    post_fixture(client, legacy_connector, "user_created", django_capture_on_commit_callbacks)
    assert hull_sandbox.user(email="liza@rei.com")["traits_intercom/is_lead"] is False
    # What the connector now knows of that Intercom user: its link, with its email.
    assert IdentityLink.objects.filter(connector=legacy_connector, entity=Entity.USER, intercom_id=USER_ID, email="liza@rei.com").exists()
    before = len(hull_sandbox.firehose_records)

    lead = json.loads(fixture_bytes("contact_created"))
    lead["data"]["item"]["email"] = "liza@rei.com"
    body = json.dumps(lead).encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/intercom/{legacy_connector.slug}/webhooks",
            data=body,
            content_type="application/json",
            HTTP_X_HUB_SIGNATURE=intercom_signature(SECRET, body),
        )
    assert response.status_code == 200, response.content

    new_records = hull_sandbox.firehose_records[before:]
    [traits] = [record for record in new_records if record.type == "traits"]
    assert traits.body["intercom_lead/id"] == LEAD_ID  # the lead's own group is still written
    assert not any(key.startswith("intercom/") for key in traits.body)
    aliases = [record.body["anonymous_id"] for record in new_records if record.type == "alias"]
    assert f"intercom:{LEAD_ID}" in aliases and f"intercom:{LEAD_VISITOR_ID}" in aliases
    assert not any(record.error for record in hull_sandbox.firehose_records)
    profile = hull_sandbox.user(email="liza@rei.com")
    assert profile["traits_intercom/is_lead"] is False and profile["traits_intercom/anonymous"] is False
    assert profile["traits_intercom/id"] == USER_ID
    assert profile["traits_intercom_lead/id"] == LEAD_ID  # one Hull user: the lead merged into it
    assert len(hull_sandbox.users()) == 1


def test_a_lead_with_an_unknown_email_still_writes_the_legacy_group(
    client, legacy_connector, hull_sandbox, django_capture_on_commit_callbacks
):
    from sync.models import Entity, IdentityLink

    # A known Intercom user, but with another email: nothing to protect.
    IdentityLink.objects.create(connector=legacy_connector, entity=Entity.USER, intercom_id=USER_ID, email="liza@rei.com")
    post_fixture(client, legacy_connector, "contact_created", django_capture_on_commit_callbacks)
    [traits] = records_of(hull_sandbox, "traits")
    assert traits.body["intercom/is_lead"] is True and traits.body["intercom/id"] == LEAD_ID
