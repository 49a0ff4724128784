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
