"""Junk refused at the field it was typed in, with what to type instead."""

from __future__ import annotations

import pytest
from django.urls import reverse

from sync.models import FieldMapping
from tests.admin_helpers import Recorder, add_row, fake_module, form_data, formset_prefix

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quiet_services(monkeypatch):
    fake_module(monkeypatch, "sync.incoming.fetch", connector_schedules_update=Recorder(result=[]))
    fake_module(monkeypatch, "sync.outgoing.attributes", data_attributes_sync=Recorder(result=[]))


def post(client, connector, data):
    return client.post(reverse("admin:sync_connector_change", args=[connector.pk]), data)


def test_a_topic_pattern_that_is_no_topic_is_refused(staff_client, connector, intercom_sandbox):
    data = form_data(staff_client, connector)
    data["incoming_event_patterns"] = "conversation.*\nnot a topic!!"
    response = post(staff_client, connector, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["incoming_event_patterns"]
    assert "Not an Intercom topic: “not a topic!!”" in errors[0]
    connector.refresh_from_db()
    assert "not a topic!!" not in connector.incoming_events


def test_topics_and_wildcards_are_accepted(staff_client, connector, intercom_sandbox):
    data = form_data(staff_client, connector)
    data["incoming_event_patterns"] = "conversation.*\ncontact.*.tag.created"
    assert post(staff_client, connector, data).status_code == 302
    connector.refresh_from_db()
    assert {"conversation.*", "contact.*.tag.created"} <= set(connector.incoming_events)


@pytest.mark.parametrize("field", ["fetch_users_interval", "fetch_leads_interval", "fetch_companies_interval"])
def test_an_interval_of_zero_minutes_is_refused(staff_client, connector, intercom_sandbox, field):
    data = form_data(staff_client, connector)
    data[field] = "0"
    response = post(staff_client, connector, data)
    assert response.status_code == 200
    assert "1 or more" in response.context["adminform"].form.errors[field][0]


def test_a_traits_prefixed_hull_attribute_is_explained_not_rewritten(staff_client, connector, intercom_sandbox):
    data = form_data(staff_client, connector)
    prefix = formset_prefix(staff_client, connector, "User outgoing")
    add_row(data, prefix, entity="user", direction="outgoing", hull_attribute="traits_phone", intercom_attribute="phone")
    response = post(staff_client, connector, data)
    assert response.status_code == 200
    assert "Write the Hull attribute without “traits_”: “phone”" in response.content.decode()
    assert not FieldMapping.objects.filter(connector=connector, direction="outgoing", hull_attribute__in=["phone", "traits_phone"]).exists()


def test_two_identical_mapping_rows_are_explained_in_words(staff_client, connector, intercom_sandbox):
    from tests.words_checker import raw_codes

    data = form_data(staff_client, connector)
    prefix = formset_prefix(staff_client, connector, "User outgoing")
    for _ in range(2):
        add_row(data, prefix, entity="user", direction="outgoing", hull_attribute="plan", intercom_attribute="plan")
    response = post(staff_client, connector, data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "duplicate data for" not in html
    assert "Two rows" in html
    assert not raw_codes(html)
