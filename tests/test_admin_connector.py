"""The connector settings page: laid out like the spec's Settings Reference, validated, secrets write-only."""

from __future__ import annotations

import re

import pytest
import responses
from django.urls import reverse

from settings_ui import spec_texts
from sync.models import Connector, Direction, Entity, FieldMapping, HullSegment
from tests.admin_helpers import Recorder, add_row, fake_module, form_data, formset_prefix

pytestmark = pytest.mark.django_db

SECTIONS = ["Getting started", "Users", "Leads", "Companies", "Hull events", "Incoming fields", "Fetching", "Intercom webhooks", "Advanced"]


@pytest.fixture(autouse=True)
def quiet_services(monkeypatch):
    """Saving calls the schedule and data-attribute services; here they are recorded, not run."""
    schedules, attributes = Recorder(result=[]), Recorder(result=[])
    fake_module(monkeypatch, "sync.incoming.fetch", connector_schedules_update=schedules)
    fake_module(monkeypatch, "sync.outgoing.attributes", data_attributes_sync=attributes)
    return schedules, attributes


@pytest.fixture
def offline_intercom(monkeypatch):
    """Intercom unreachable: the attribute pickers fall back to the standard fields."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked


def change_page(client, connector) -> str:
    response = client.get(reverse("admin:sync_connector_change", args=[connector.pk]))
    assert response.status_code == 200
    return response.content.decode()


def save(client, connector, data):
    return client.post(reverse("admin:sync_connector_change", args=[connector.pk]), data)


def test_sections_follow_the_settings_reference_in_order(staff_client, connector, offline_intercom):
    html = change_page(staff_client, connector)
    positions = [html.index(f">{title}</h2>") for title in SECTIONS]
    assert positions == sorted(positions)


def test_identity_and_mapping_tables_sit_inside_their_section(staff_client, connector, offline_intercom):
    html = change_page(staff_client, connector)
    users, leads, companies, events, incoming, fetching = (
        html.index(f">{t}</h2>") for t in ("Users", "Leads", "Companies", "Hull events", "Incoming fields", "Fetching")
    )
    assert users < html.index("User identity") < html.index("User outgoing fields") < leads
    assert leads < html.index("Lead identity") < html.index("Lead outgoing fields") < companies
    assert companies < html.index("Company identity") < html.index("Company outgoing fields") < events
    assert incoming < html.index("User incoming fields") < html.index("Lead incoming fields") < html.index("Company incoming fields") < fetching


def test_the_page_is_in_tabs_each_holding_its_sections(staff_client, connector, offline_intercom):
    from settings_ui.layout import TABS

    html = change_page(staff_client, connector)
    assert [t.label for t in TABS] == ["Connection", "Outgoing (Hull → Intercom)", "Incoming (Intercom → Hull)", "Webhooks", "Advanced"]
    bounds = [html.index(f'data-tab-panel="{tab.id}"') for tab in TABS] + [len(html)]
    for n, tab in enumerate(TABS):
        panel = html[bounds[n] : bounds[n + 1]]
        for section in tab.sections:
            assert f">{section}</h2>" in panel, (tab.id, section)
    assert 'id="nav-sidebar"' not in html  # the internal tables' menu (identity links, cursors, tasks) stays off this page


def test_help_texts_come_from_the_spec(staff_client, connector, offline_intercom):
    html = change_page(staff_client, connector)
    assert "If empty, Hull will not send any users" in html
    assert "A user in a Lead Filter segment AND a User Filter segment is sent as a lead" in html
    assert "Fetch All is a manual action" in html


def test_incoming_topics_are_checkboxes_with_the_spec_table_descriptions(staff_client, connector, offline_intercom):
    html = change_page(staff_client, connector)
    for topic, info in spec_texts.INCOMING_TOPICS.items():
        assert f'value="{topic}"' in html
        assert info.description.replace("’", "&#x27;") in html or info.description in html
    checked = set(re.findall(r'<input type="checkbox" name="incoming_events" value="([^"]+)"[^>]*checked', html))
    assert checked == {"user.created", "user.deleted", "contact.created"}


def test_segment_pickers_offer_all_and_the_segments_hull_sent(staff_client, connector, offline_intercom):
    HullSegment.objects.create(connector=connector, kind="user", hull_id="seg-vip", name="VIP users")
    HullSegment.objects.create(connector=connector, kind="account", hull_id="seg-big", name="Big accounts")
    HullSegment.objects.create(connector=connector, kind="user", hull_id="seg-old", name="Gone", deleted=True)
    html = change_page(staff_client, connector)
    lead_picker = html[html.index('name="synchronized_lead_segments"'):]
    lead_picker = lead_picker[: lead_picker.index("</select>")]
    assert 'value="ALL"' in lead_picker and "VIP users" in lead_picker
    assert "Big accounts" not in lead_picker and "Gone" not in lead_picker
    account_picker = html[html.index('name="synchronized_account_segments"'):]
    assert "Big accounts" in account_picker[: account_picker.index("</select>")]


def test_saving_selected_segments_and_topics_stores_them(staff_client, connector, offline_intercom, quiet_services):
    HullSegment.objects.create(connector=connector, kind="user", hull_id="seg-vip", name="VIP users")
    data = form_data(staff_client, connector)
    data["synchronized_user_segments"] = ["seg-vip"]
    data["synchronized_lead_segments"] = ["ALL", "seg-vip"]
    data["incoming_events"] = ["user.created", "conversation.user.created"]
    data["outgoing_events"] = "Signed up\nViewed *\n"
    response = save(staff_client, connector, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    connector.refresh_from_db()
    assert connector.synchronized_user_segments == ["seg-vip"]
    assert connector.synchronized_lead_segments == ["ALL"]  # ALL already includes every segment
    assert connector.incoming_events == ["user.created", "conversation.user.created"]
    assert connector.outgoing_events == ["Signed up", "Viewed *"]
    schedules, attributes = quiet_services
    assert schedules.calls == [{"connector": connector}]
    assert attributes.calls == []  # no outgoing mapping changed: nothing to create in Intercom


def test_secrets_are_never_shown_back(staff_client, connector, offline_intercom):
    html = change_page(staff_client, connector)
    assert connector.hull_secret not in html
    assert connector.intercom_access_token not in html
    assert connector.intercom_client_secret not in html
    assert "Stored (encrypted). Leave blank to keep it" in html


def test_a_blank_secret_keeps_the_stored_one_and_a_new_one_replaces_it(staff_client, connector, offline_intercom):
    data = form_data(staff_client, connector)
    assert save(staff_client, connector, data).status_code == 302
    connector.refresh_from_db()
    assert connector.hull_secret == "hull-connector-secret-1234"
    data["hull_secret"] = "a-new-hull-secret"
    assert save(staff_client, connector, data).status_code == 302
    connector.refresh_from_db()
    assert connector.hull_secret == "a-new-hull-secret"


@pytest.mark.parametrize("field", ["id", "created_at", "updated_at"])
def test_an_outgoing_mapping_to_a_read_only_intercom_field_is_refused(staff_client, connector, offline_intercom, field):
    data = form_data(staff_client, connector)
    prefix = formset_prefix(staff_client, connector, "User outgoing fields")
    add_row(data, prefix, entity="user", direction="outgoing", hull_attribute="plan", intercom_attribute=field, overwrite=True)
    response = save(staff_client, connector, data)
    assert response.status_code == 200
    assert f"“{field}” is set by Intercom itself and cannot be written" in response.content.decode()
    assert not FieldMapping.objects.filter(connector=connector, direction=Direction.OUTGOING).exists()


def test_an_outgoing_mapping_is_saved_with_its_entity_and_direction(staff_client, connector, offline_intercom):
    data = form_data(staff_client, connector)
    prefix = formset_prefix(staff_client, connector, "Lead outgoing fields")
    add_row(data, prefix, entity="lead", direction="outgoing", hull_attribute="job_title", intercom_attribute="job_title", overwrite=True)
    assert save(staff_client, connector, data).status_code == 302
    mapping = FieldMapping.objects.get(connector=connector, direction=Direction.OUTGOING)
    assert (mapping.entity, mapping.hull_attribute, mapping.intercom_attribute) == (Entity.LEAD, "job_title", "job_title")


def test_tampering_with_the_hidden_entity_does_not_move_a_row_to_another_table(staff_client, connector, offline_intercom):
    data = form_data(staff_client, connector)
    prefix = formset_prefix(staff_client, connector, "Lead outgoing fields")
    add_row(data, prefix, entity="company", direction="incoming", hull_attribute="plan", intercom_attribute="plan_name")
    assert save(staff_client, connector, data).status_code == 302
    mapping = FieldMapping.objects.get(connector=connector, hull_attribute="plan")
    assert (mapping.entity, mapping.direction) == (Entity.LEAD, Direction.OUTGOING)


def test_two_rows_writing_the_same_intercom_field_are_refused(staff_client, connector, offline_intercom):
    data = form_data(staff_client, connector)
    prefix = formset_prefix(staff_client, connector, "User outgoing fields")
    add_row(data, prefix, hull_attribute="plan", intercom_attribute="plan_name")
    add_row(data, prefix, hull_attribute="tier", intercom_attribute="plan_name")
    response = save(staff_client, connector, data)
    assert response.status_code == 200
    assert "Two rows write the Intercom field “plan_name”" in response.content.decode()


def test_identity_mappings_cannot_be_deleted(staff_client, connector, offline_intercom):
    data = form_data(staff_client, connector)
    prefix = formset_prefix(staff_client, connector, "User incoming fields")
    response = staff_client.get(reverse("admin:sync_connector_change", args=[connector.pk]))
    formset = next(i.formset for i in response.context["inline_admin_formsets"] if i.formset.prefix == prefix)
    index = next(n for n, f in enumerate(formset.forms) if f.instance.intercom_attribute == "id")
    data[f"{prefix}-{index}-DELETE"] = "on"
    response = save(staff_client, connector, data)
    assert response.status_code == 200
    assert "“id” is an identity mapping and cannot be removed" in response.content.decode()


def test_the_last_identity_claim_cannot_be_removed(staff_client, connector, offline_intercom):
    data = form_data(staff_client, connector)
    prefix = formset_prefix(staff_client, connector, "Lead identity")
    data[f"{prefix}-0-DELETE"] = "on"
    response = save(staff_client, connector, data)
    assert response.status_code == 200
    assert "Keep at least one identity claim" in response.content.decode()


def test_adding_a_connector_gives_it_the_defaults_and_opens_its_settings(staff_client, offline_intercom):
    response = staff_client.post(
        reverse("admin:sync_connector_add"),
        {"name": "Beta", "slug": "beta", "is_active": "on", "hull_organization": "beta.hullapp.io", "hull_id": "abc", "hull_secret": "s3cret"},
    )
    connector = Connector.objects.get(slug="beta")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:sync_connector_change", args=[connector.pk])
    assert connector.identity_claims.count() == 5
    assert connector.field_mappings.filter(direction=Direction.INCOMING, entity=Entity.USER).count() == 29
    assert connector.hull_secret == "s3cret"


def test_the_intercom_attribute_picker_lists_the_workspace_data_attributes(staff_client, connector):
    attributes = {
        "type": "list",
        "data": [
            {"name": "name", "full_name": "name", "label": "Name", "api_writable": True},
            {"name": "id", "full_name": "id", "label": "ID", "api_writable": False},
            {"name": "job_title", "full_name": "custom_attributes.job_title", "label": "Job title", "api_writable": True, "custom": True},
        ],
    }
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.get(re.compile(r"https://api\.intercom\.io/data_attributes.*"), json=attributes)
        html = change_page(staff_client, connector)
    outgoing = html[html.index('id="intercom-contact-outgoing-fields"'):]
    outgoing = outgoing[: outgoing.index("</datalist>")]
    assert 'value="job_title"' in outgoing and 'value="id"' not in outgoing
    incoming = html[html.index('id="intercom-contact-incoming-fields"'):]
    assert 'value="custom_attributes.job_title"' in incoming[: incoming.index("</datalist>")]


def test_the_picker_falls_back_to_standard_fields_when_intercom_is_unreachable(staff_client, connector, offline_intercom):
    html = change_page(staff_client, connector)
    outgoing = html[html.index('id="intercom-contact-outgoing-fields"'):]
    assert 'value="unsubscribed_from_emails"' in outgoing[: outgoing.index("</datalist>")]


def test_a_pasted_token_is_checked_and_names_the_workspace(staff_client, connector):
    me = {"type": "admin", "id": "1", "app": {"type": "app", "id_code": "ws_pasted", "name": "Pasted workspace"}}
    data = form_data(staff_client, connector)
    data["intercom_access_token"] = "a-private-app-token"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.get("https://api.intercom.io/me", json=me)
        assert save(staff_client, connector, data).status_code == 302
    connector.refresh_from_db()
    assert connector.intercom_access_token == "a-private-app-token"
    assert (connector.intercom_workspace_id, connector.intercom_workspace_name) == ("ws_pasted", "Pasted workspace")


def test_a_pasted_token_intercom_rejects_is_a_form_error(staff_client, connector):
    data = form_data(staff_client, connector)
    data["intercom_access_token"] = "a-wrong-token"
    body = {"type": "error.list", "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}]}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.get("https://api.intercom.io/me", json=body, status=401)
        response = save(staff_client, connector, data)
    assert response.status_code == 200
    assert "Intercom refused this access token." in response.content.decode()
    connector.refresh_from_db()
    assert connector.intercom_access_token != "a-wrong-token"


def test_the_picker_shows_custom_attributes_of_the_sandbox_workspace(staff_client, connector, intercom_sandbox):
    intercom_sandbox.add_data_attribute("favourite_colour")
    html = change_page(staff_client, connector)
    outgoing = html[html.index('id="intercom-contact-outgoing-fields"'):]
    assert 'value="favourite_colour"' in outgoing[: outgoing.index("</datalist>")]


def test_every_topic_of_the_spec_table_is_one_the_connector_handles():
    from sync.incoming.topics import SUPPORTED_TOPICS

    assert set(spec_texts.INCOMING_TOPICS) <= set(SUPPORTED_TOPICS)


def test_patterns_and_unlisted_topics_are_kept_in_the_whitelist(staff_client, connector, offline_intercom):
    data = form_data(staff_client, connector)
    data["incoming_events"] = ["user.created", "company.updated"]
    data["incoming_event_patterns"] = "conversation.*\ncontact.user.updated\n"
    assert save(staff_client, connector, data).status_code == 302
    connector.refresh_from_db()
    assert connector.incoming_events == ["user.created", "company.updated", "conversation.*", "contact.user.updated"]
    html = change_page(staff_client, connector)
    patterns = html[html.index('name="incoming_event_patterns"'):]
    assert "conversation.*" in patterns[: patterns.index("</textarea>")]


def test_the_website_snippet_tag_is_shown_escaped_with_a_copy_button(staff_client, connector, offline_intercom, settings):
    from django.utils.html import escape

    from sync.services.snippet import snippet_tag, snippet_version

    settings.PUBLIC_BASE_URL = "https://connector.example.com"
    html = change_page(staff_client, connector)
    tag = snippet_tag(connector)
    assert tag == f'<script async src="https://connector.example.com/hull/acme/ship.js?v={snippet_version()}"></script>'
    assert f'value="{escape(tag)}"' in html  # shown as text, never run on the admin page
    assert tag not in html
    assert 'data-copy-target="website-snippet"' in html and "navigator.clipboard" in html
    assert "Linking website anonymous traffic with Intercom Leads" in html
    getting_started, leads = html.index(">Getting started</h2>"), html.index(">Leads</h2>")
    assert getting_started < html.index('id="website-snippet"') < leads


def test_mapping_tables_do_not_offer_entity_or_direction_pickers(staff_client, connector, offline_intercom):
    """Each table is one entity and one direction: its rows carry them hidden, staff never pick them."""
    page = change_page(staff_client, connector)
    pickers = re.findall(r'<select name="([^"]+-(?:entity|direction))"', page)
    assert pickers == [], pickers
    assert re.search(r'<input type="hidden" name="[^"]+-0-direction" value="incoming"', page)
