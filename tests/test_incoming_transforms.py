"""Contact -> Hull user and company -> Hull account (docs/intercom-behaviour.md#contact-to-hull-user, #company-to-hull-account), payload shapes, the legacy seam."""

from __future__ import annotations

from sync.incoming.context import IncomingContext
from sync.incoming.payloads import contact_role, normalise_contact, notification_from_payload
from sync.incoming.transforms import company_to_hull_account, contact_to_hull_user
from tests.incoming_support import calls_to, intercom, seed_company, seed_contact, seed_tag  # noqa: F401


def test_a_1x_user_is_normalised_to_the_v2_shape():
    contact = normalise_contact(
        {"type": "user", "id": "u1", "user_id": "ext-1", "email": "a@b.c", "created_at": "2020-08-04T15:32:01.666Z",
         "last_request_at": "2020-08-04T15:30:00Z", "avatar": {"type": "avatar", "image_url": "https://x/a.png"},
         "location_data": {"city_name": "Lyon", "country_name": "France", "region_name": "ARA"},
         "companies": {"type": "company.list", "companies": [{"id": "c1", "name": "ACME"}]}}
    )
    assert contact["role"] == "user" and contact["external_id"] == "ext-1"
    assert contact["created_at"] == 1596555122 and contact["last_seen_at"] == 1596555000
    assert contact["avatar"] == "https://x/a.png"
    assert contact["location"] == {"type": "location", "country": "France", "region": "ARA", "city": "Lyon"}
    assert contact["companies"]["type"] == "company.list"


def test_roles_from_either_shape():
    assert contact_role({"type": "contact", "id": "1", "user_id": "x"}) == "lead"  # a 1.x lead
    assert contact_role({"type": "contact", "id": "1", "role": "user"}) == "user"
    assert contact_role({"type": "contact", "id": "1", "deleted": True}) is None  # slim 2.x: unknown


def test_a_missing_notification_id_becomes_a_body_hash():
    first = notification_from_payload({"topic": "ping", "id": None}, b'{"topic": "ping", "id": null}')
    again = notification_from_payload({"topic": "ping", "id": None}, b'{"topic": "ping", "id": null}')
    assert first.notification_id == again.notification_id and first.notification_id.startswith("sha1-")


def test_unknown_tag_ids_fall_back_to_the_contacts_tag_list(connector, intercom):
    contact = seed_contact(intercom, "c1", tags={"1": "Known", "2": "Added later"})
    # The payload names tag 1 (known to the workspace list) and 9 (unknown): the contact's own list decides.
    contact = normalise_contact({**contact, "tags": {"type": "list", "data": [{"id": "1"}, {"id": "9"}], "has_more": False}})
    update = contact_to_hull_user(IncomingContext(connector=connector), contact)
    assert update.traits["intercom_user/tags"] == ["Known", "Added later"]
    assert [c.path for c in intercom.calls] == ["/tags", "/contacts/c1/tags"]


def test_link_users_in_hull_links_only_a_contact_with_exactly_one_company(connector, intercom):
    connector.link_users_in_hull = True
    one = seed_contact(intercom, "one")
    seed_contact(intercom, "two")
    co1 = seed_company(intercom, "co1", members=["one", "two"], name="Company co1")
    seed_company(intercom, "co2", members=["two"], name="Company co2")
    ctx = IncomingContext(connector=connector)
    one = intercom.contact("one")
    assert contact_to_hull_user(ctx, normalise_contact(one)).account_link == {"anonymous_id": f"intercom:{co1['id']}"}
    linked = contact_to_hull_user(ctx, normalise_contact(intercom.contact("two")))
    assert linked.account_link is None
    assert sorted(linked.traits["intercom_user/companies"]) == ["Company co1", "Company co2"]


def test_overwrite_off_becomes_set_if_null(connector, intercom):
    connector.field_mappings.filter(entity="user", intercom_attribute="phone").update(overwrite=False)
    contact = seed_contact(intercom, "c1", phone="+33 1 23")
    update = contact_to_hull_user(IncomingContext(connector=connector), normalise_contact(contact))
    assert update.traits["intercom_user/phone"] == {"operation": "setIfNull", "value": "+33 1 23"}


def test_legacy_attribute_mode_adds_the_intercom_group_and_legacy_alias(connector, intercom):
    connector.legacy_attribute_mode = True
    lead = seed_contact(intercom, "l1", role="lead", external_id="visitor-9")
    update = contact_to_hull_user(IncomingContext(connector=connector), normalise_contact(lead))
    assert update.traits["intercom/is_lead"] is True
    assert update.traits["intercom/email"] == "l1@example.com"
    assert update.traits["intercom_lead/id"] == "l1"
    assert {"intercom:l1", "intercom:visitor-9"} <= set(update.aliases)


def test_company_to_account(connector, intercom):
    [member] = [seed_contact(intercom, "m1")["id"]]
    company = seed_company(intercom, "cid-co1", members=[member], name="Company co1", website="co1.example.com")
    from sandbox.intercom.models import Company

    vip = seed_tag(intercom, "1", "VIP")
    vip.companies.add(Company.objects.get(intercom_id=company["id"]))
    company = intercom.client().get_company(company["id"])
    update = company_to_hull_account(IncomingContext(connector=connector), company)
    assert update.claims == {"external_id": "cid-co1", "domain": "co1.example.com", "anonymous_id": f"intercom:{company['id']}"}
    assert update.traits["intercom/tags"] == ["VIP"]
    assert update.traits["intercom/id"] == company["id"]
    assert update.traits["name"] == {"operation": "setIfNull", "value": "Company co1"}
