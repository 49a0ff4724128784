"""Legacy attribute mode: each branch of the spec's migration processor script, as a pure function."""

from __future__ import annotations

import pytest

from sync.legacy import LegacyUpdate, legacy_contact_update

USER_TRAITS = {
    "intercom_user/id": "5f22e3b5b1c8a3001d6ea1aa",
    "intercom_user/user_id": "ext-25",
    "intercom_user/email": "wash@serenity.io",
    "intercom_user/name": "Hoban Washburn",
    "name": {"operation": "setIfNull", "value": "Hoban Washburn"},  # top level: not part of the group
}
LEAD_TRAITS = {
    "intercom_lead/id": "5f22e3b5b1c8a3001d6ea1bb",
    "intercom_lead/user_id": "16e690c0-485a-4e87-ae98-a326e788a4f7",
    "intercom_lead/email": "kaylee@serenity.io",
}


# --- createLegacyAttributes ---------------------------------------------------------------


def test_a_user_copies_its_group_into_intercom_and_is_neither_lead_nor_anonymous():
    update = legacy_contact_update(target="user", group_traits=USER_TRAITS, intercom_id="5f22e3b5b1c8a3001d6ea1aa")
    assert update.traits == {
        "intercom/id": "5f22e3b5b1c8a3001d6ea1aa",
        "intercom/user_id": "ext-25",
        "intercom/email": "wash@serenity.io",
        "intercom/name": "Hoban Washburn",
        "intercom/is_lead": False,
        "intercom/anonymous": False,
    }


def test_a_lead_is_anonymous_is_lead_and_moves_user_id_to_lead_user_id():
    update = legacy_contact_update(target="lead", group_traits=LEAD_TRAITS, intercom_id="5f22e3b5b1c8a3001d6ea1bb")
    assert update.traits == {
        "intercom/id": "5f22e3b5b1c8a3001d6ea1bb",
        "intercom/email": "kaylee@serenity.io",
        "intercom/anonymous": True,
        "intercom/is_lead": True,
        "intercom/lead_user_id": "16e690c0-485a-4e87-ae98-a326e788a4f7",
        "intercom/user_id": None,
    }


def test_a_lead_with_a_null_user_id_writes_a_null_lead_user_id():
    traits = {**LEAD_TRAITS, "intercom_lead/user_id": None}
    update = legacy_contact_update(target="lead", group_traits=traits, intercom_id="lead-1")
    assert update.traits["intercom/lead_user_id"] is None
    assert update.traits["intercom/user_id"] is None


def test_a_lead_without_a_user_id_trait_has_no_lead_user_id():
    # lodash `_.set(traits, "lead_user_id", undefined)` vanishes when the traits are serialised.
    traits = {k: v for k, v in LEAD_TRAITS.items() if k != "intercom_lead/user_id"}
    update = legacy_contact_update(target="lead", group_traits=traits, intercom_id="lead-1")
    assert "intercom/lead_user_id" not in update.traits
    assert update.traits["intercom/user_id"] is None


def test_operations_are_kept_and_lead_user_id_reads_the_value_inside_them():
    traits = {
        "intercom_lead/user_id": {"operation": "set", "value": "visitor-9"},
        "intercom_lead/phone": {"operation": "setIfNull", "value": "+33 1"},
    }
    update = legacy_contact_update(target="lead", group_traits=traits, intercom_id="lead-1")
    assert update.traits["intercom/phone"] == {"operation": "setIfNull", "value": "+33 1"}
    assert update.traits["intercom/lead_user_id"] == "visitor-9"
    assert "intercom:visitor-9" in update.anonymous_ids


def test_bare_names_are_read_as_the_group():
    update = legacy_contact_update(target="user", group_traits={"id": "u1", "email": "a@b.c"}, intercom_id="u1")
    assert update.traits["intercom/email"] == "a@b.c"


def test_the_other_roles_group_is_ignored():
    traits = {**LEAD_TRAITS, "intercom_user/twitter_url": "https://twitter.com/x"}
    update = legacy_contact_update(target="lead", group_traits=traits, intercom_id="lead-1")
    assert not any("twitter" in key for key in update.traits)


# --- createLegacyAnonIds -------------------------------------------------------------------


def test_a_user_gets_intercom_colon_its_intercom_id():
    update = legacy_contact_update(target="user", group_traits=USER_TRAITS, intercom_id="5f22e3b5b1c8a3001d6ea1aa")
    assert update.anonymous_ids == ["intercom:5f22e3b5b1c8a3001d6ea1aa"]


def test_a_users_external_id_is_never_an_anonymous_id():
    # Only leads alias their user_id: a user's external_id is already an identity claim.
    update = legacy_contact_update(target="user", group_traits=USER_TRAITS, intercom_id="u1")
    assert "intercom:ext-25" not in update.anonymous_ids


def test_a_lead_with_an_external_id_gets_both_legacy_ids():
    update = legacy_contact_update(target="lead", group_traits=LEAD_TRAITS, intercom_id="5f22e3b5b1c8a3001d6ea1bb")
    assert update.anonymous_ids == [
        "intercom:5f22e3b5b1c8a3001d6ea1bb",
        "intercom:16e690c0-485a-4e87-ae98-a326e788a4f7",
    ]


def test_a_lead_without_an_external_id_gets_only_its_intercom_id():
    traits = {**LEAD_TRAITS, "intercom_lead/user_id": None}
    update = legacy_contact_update(target="lead", group_traits=traits, intercom_id="lead-1")
    assert update.anonymous_ids == ["intercom:lead-1"]


def test_legacy_ids_the_user_already_has_are_not_sent_again():
    user = legacy_contact_update(
        target="user", group_traits=USER_TRAITS, intercom_id="u1", existing_anonymous_ids=["intercom:u1", "web:123"]
    )
    assert user.anonymous_ids == []
    lead = legacy_contact_update(
        target="lead",
        group_traits=LEAD_TRAITS,
        intercom_id="lead-1",
        existing_anonymous_ids=["intercom:16e690c0-485a-4e87-ae98-a326e788a4f7"],
    )
    assert lead.anonymous_ids == ["intercom:lead-1"]


# --- the script's guard and its user-wins target choice -------------------------------------


@pytest.mark.parametrize("intercom_id", [None, ""])
def test_nothing_without_an_intercom_id(intercom_id):
    assert legacy_contact_update(target="user", group_traits=USER_TRAITS, intercom_id=intercom_id) == LegacyUpdate()


def test_nothing_without_group_traits():
    update = legacy_contact_update(target="lead", group_traits={"name": "Kaylee", "intercom_user/id": "u1"}, intercom_id="l1")
    assert not update


def test_a_lead_of_a_hull_user_who_is_also_an_intercom_user_does_not_overwrite_the_intercom_group():
    # The script picks "user" whenever intercom_user.id is set: the lead's traits never reach intercom/.
    update = legacy_contact_update(
        target="lead",
        group_traits=LEAD_TRAITS,
        intercom_id="lead-1",
        existing_anonymous_ids=["intercom-user:user-u1", "intercom:u1"],
    )
    assert update.traits == {}
    assert update.anonymous_ids == ["intercom:lead-1", "intercom:16e690c0-485a-4e87-ae98-a326e788a4f7"]


def test_companies_are_refused():
    with pytest.raises(ValueError):
        legacy_contact_update(target="company", group_traits={"id": "c1"}, intercom_id="c1")


# --- what the connector knows of the Hull user (IdentityLink) --------------------------------


def test_a_lead_sharing_its_email_with_a_known_intercom_user_is_that_user(connector):
    from sync.legacy import legacy_known_anonymous_ids
    from sync.models import IdentityLink

    IdentityLink.objects.create(connector=connector, entity="user", intercom_id="u1", email="Kaylee@Serenity.io")
    known = legacy_known_anonymous_ids(connector=connector, role="lead", email="kaylee@serenity.io")
    assert known == ["intercom-user:user-u1"]
    update = legacy_contact_update(target="lead", group_traits=LEAD_TRAITS, intercom_id="lead-1", existing_anonymous_ids=known)
    assert update.traits == {}


def test_nothing_is_known_for_users_unknown_emails_or_no_email(connector):
    from sync.legacy import legacy_known_anonymous_ids

    assert legacy_known_anonymous_ids(connector=connector, role="lead", email="nobody@serenity.io") is None
    assert legacy_known_anonymous_ids(connector=connector, role="lead", email="") is None
    assert legacy_known_anonymous_ids(connector=connector, role="user", email="kaylee@serenity.io") is None
