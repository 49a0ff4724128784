"""The browser snippet, server side: what /hull/<slug>/ship.js serves, its caching, its tag, and the
lead anonymous id it shares with incoming leads. The browser behaviour is in tests/browser/."""

from __future__ import annotations

import json
import re

from sync.models import FieldMapping
from sync.services.snippet import (
    lead_anonymous_id,
    lead_visitor_anonymous_ids,
    snippet_config,
    snippet_tag,
    snippet_version,
)

URL = "/hull/acme/ship.js"


def embedded_config(body: str) -> dict:
    match = re.search(r"CONFIG = (\{.*?\});\n", body)
    assert match, "configuration not embedded"
    return json.loads(match.group(1))


def test_the_snippet_is_javascript_with_the_connector_settings_embedded(client, connector):
    connector.outgoing_events = ["Signed up", "Viewed *"]
    connector.save()
    response = client.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/javascript; charset=utf-8"
    body = response.content.decode()
    assert "__HULL_INTERCOM_CONFIG__" not in body
    config = embedded_config(body)
    assert config["active"] is True
    assert config["aliasPrefixes"] == ["intercom-lead:lead-"]
    assert config["events"] == ["Signed up", "Viewed *"]
    assert config["version"] == snippet_version()


def test_the_snippet_is_small_and_holds_no_secret(client, connector):
    body = client.get(URL).content.decode()
    assert len(body.encode()) < 16_000
    for secret in (connector.hull_secret, connector.intercom_access_token, connector.intercom_client_secret, connector.public_token):
        assert secret not in body


def test_the_snippet_is_cacheable_and_revalidates_with_its_etag(client, connector):
    first = client.get(URL)
    assert "public" in first["Cache-Control"] and "max-age=300" in first["Cache-Control"]
    etag = first["ETag"]
    again = client.get(URL, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    assert again["ETag"] == etag


def test_changing_the_settings_changes_the_etag(client, connector):
    etag = client.get(URL)["ETag"]
    connector.is_active = False
    connector.save()
    response = client.get(URL, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200 and response["ETag"] != etag


def test_a_paused_connector_serves_a_snippet_that_does_nothing(client, connector):
    connector.is_active = False
    connector.save()
    assert embedded_config(client.get(URL).content.decode())["active"] is False


def test_an_unknown_connector_is_a_404_that_still_parses_as_javascript(client, db):
    response = client.get("/hull/nobody/ship.js")
    assert response.status_code == 404
    assert response.content.decode().strip() == "/* unknown connector */"


def test_only_get_and_head_are_allowed(client, connector):
    assert client.post(URL).status_code == 405
    assert client.head(URL).status_code == 200


def test_the_outgoing_mapping_is_embedded_in_messenger_names(connector):
    rows = [
        ("user", "first_name", "name"),
        ("lead", "first_name", "name"),  # the same pair for leads is sent once
        ("user", "traits_plan", "plan"),
        ("user", "external_id", "external_id"),
        ("user", "created_at", "signed_up_at"),
        ("user", "owner", "owner_id"),  # not settable from the messenger
        ("user", "intercom_user/tags", "tags_copy"),  # the connector's own group
        ("user", "account.domain", "company_domain"),
    ]
    for entity, hull_attribute, intercom_attribute in rows:
        FieldMapping.objects.create(
            connector=connector, entity=entity, direction="outgoing", hull_attribute=hull_attribute, intercom_attribute=intercom_attribute
        )
    assert snippet_config(connector=connector)["mapping"] == [
        ["first_name", "name"],
        ["plan", "plan"],
        ["external_id", "user_id"],
        ["created_at", "created_at"],
    ]


def test_legacy_attribute_mode_also_aliases_the_legacy_format(connector):
    connector.legacy_attribute_mode = True
    assert snippet_config(connector=connector)["aliasPrefixes"] == ["intercom-lead:lead-", "intercom:"]


def test_the_tag_is_one_versioned_async_script_line(connector, settings):
    settings.PUBLIC_BASE_URL = "https://connector.example.com/"
    tag = snippet_tag(connector)
    assert tag == f'<script async src="https://connector.example.com/hull/acme/ship.js?v={snippet_version()}"></script>'
    assert "\n" not in tag


def test_an_incoming_lead_with_a_visitor_id_carries_the_snippets_alias():
    lead = {"type": "contact", "role": "lead", "id": "5f22e3b5b1c8a3001d6ea1bb", "external_id": "16e690c0-485a-4e87-ae98-a326e788a4f7"}
    assert lead_visitor_anonymous_ids(lead) == ["intercom-lead:lead-16e690c0-485a-4e87-ae98-a326e788a4f7"]
    assert lead_anonymous_id("16e690c0-485a-4e87-ae98-a326e788a4f7") == lead_visitor_anonymous_ids(lead)[0]


def test_users_and_leads_without_a_visitor_id_carry_no_extra_alias():
    assert lead_visitor_anonymous_ids({"role": "user", "id": "u1", "external_id": "25"}) == []
    assert lead_visitor_anonymous_ids({"role": "lead", "id": "l1", "external_id": None}) == []
    assert lead_visitor_anonymous_ids({"role": "lead", "id": "l1", "external_id": "l1"}) == []
