"""The base: defaults a new connector gets, constraints, secrets at rest, settings from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from sync.crypto import decrypt
from sync.models import Connector, FieldMapping, IdentityClaim, IdentityLink
from tests.conftest import HULL_SECRET, INTERCOM_TOKEN

ROOT = Path(__file__).resolve().parent.parent


def test_new_connector_has_hull_defaults(connector):
    assert connector.incoming_events == ["user.created", "user.deleted", "contact.created"]
    assert connector.send_batch_as == "Users"
    assert (connector.fetch_users, connector.fetch_leads, connector.fetch_companies) == (True, True, False)
    assert (connector.tag_users, connector.tag_leads, connector.tag_companies) == (True, True, True)
    assert connector.convert_leads is False and connector.send_events is True and connector.receive_events is True
    assert connector.synchronized_user_segments == [] and connector.outgoing_events == []


def test_new_connector_gets_default_incoming_mappings(connector):
    incoming = FieldMapping.objects.filter(connector=connector, direction="incoming")
    assert incoming.filter(entity="user").count() == 29
    assert incoming.filter(entity="lead").count() == 29
    assert incoming.filter(entity="company").count() == 4
    assert not FieldMapping.objects.filter(connector=connector, direction="outgoing").exists()
    row = incoming.get(entity="lead", intercom_attribute="location.city")
    assert row.hull_attribute == "intercom_lead/location_city_name" and row.overwrite
    assert incoming.get(entity="user", intercom_attribute="external_id").hull_attribute == "intercom_user/user_id"
    assert incoming.get(entity="company", intercom_attribute="tags").hull_attribute == "intercom/tags"


def test_new_connector_gets_identity_claims_in_priority_order(connector):
    def claims(entity):
        return list(
            IdentityClaim.objects.filter(connector=connector, entity=entity).values_list("hull_attribute", "intercom_attribute")
        )

    assert claims("user") == [("external_id", "external_id"), ("email", "email")]
    assert claims("lead") == [("email", "email")]
    assert claims("company") == [("external_id", "company_id"), ("domain", "website")]


def test_two_incoming_mappings_cannot_write_the_same_hull_attribute(connector):
    with pytest.raises(IntegrityError), transaction.atomic():
        FieldMapping.objects.create(
            connector=connector, entity="user", direction="incoming", hull_attribute="intercom_user/name", intercom_attribute="custom_attributes.nick"
        )


def test_two_outgoing_mappings_cannot_write_the_same_intercom_field(connector):
    FieldMapping.objects.create(connector=connector, entity="user", direction="outgoing", hull_attribute="first_name", intercom_attribute="name")
    with pytest.raises(IntegrityError), transaction.atomic():
        FieldMapping.objects.create(connector=connector, entity="user", direction="outgoing", hull_attribute="last_name", intercom_attribute="name")


def test_identity_links_are_unique_on_both_sides(connector):
    IdentityLink.objects.create(connector=connector, entity="user", intercom_id="ic_1", hull_id="hull_1")
    with pytest.raises(IntegrityError), transaction.atomic():
        IdentityLink.objects.create(connector=connector, entity="user", intercom_id="ic_1", hull_id="hull_2")
    with pytest.raises(IntegrityError), transaction.atomic():
        IdentityLink.objects.create(connector=connector, entity="user", intercom_id="ic_2", hull_id="hull_1")
    # Unknown Hull ids (incoming contacts not yet seen in Hull) may be many.
    IdentityLink.objects.create(connector=connector, entity="user", intercom_id="ic_3")
    IdentityLink.objects.create(connector=connector, entity="user", intercom_id="ic_4")


def test_secrets_are_encrypted_at_rest_and_read_back(connector):
    with connection.cursor() as cursor:
        cursor.execute("SELECT hull_secret, intercom_access_token FROM sync_connector WHERE id = %s", [connector.pk])
        raw_secret, raw_token = cursor.fetchone()
    assert HULL_SECRET not in raw_secret and INTERCOM_TOKEN not in raw_token
    assert raw_secret.startswith("fernet:") and decrypt(raw_secret) == HULL_SECRET
    fresh = Connector.objects.get(pk=connector.pk)
    assert fresh.hull_secret == HULL_SECRET and fresh.intercom_access_token == INTERCOM_TOKEN


def test_migrations_match_the_models(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def _settings_in_subprocess(env: dict[str, str], expression: str) -> subprocess.CompletedProcess:
    code = f"import django,os;os.environ['DJANGO_SETTINGS_MODULE']='connector_site.settings';django.setup();from django.conf import settings as s;print({expression})"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "FIELD_ENCRYPTION", "SANDBOX"))}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = _settings_in_subprocess({}, "s.DEBUG")
    assert result.returncode != 0 and "DJANGO_SECRET_KEY must be set" in result.stderr


def test_settings_switch_to_postgres_and_redis_from_the_environment():
    env = {
        "DJANGO_SECRET_KEY": "x" * 50,
        "FIELD_ENCRYPTION_KEY": "aW50ZXJjb20tY29ubmVjdG9yLXRlc3QtZmVybmV0LWs=",
        "DATABASE_URL": "postgres://u:p@127.0.0.1:5432/connector",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    result = _settings_in_subprocess(
        env, "s.DATABASES['default']['ENGINE'], s.CACHES['default']['BACKEND'], 'redis' in s.Q_CLUSTER, s.SANDBOX_ENABLED, s.SESSION_COOKIE_SECURE"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.postgresql django.core.cache.backends.redis.RedisCache True False True"


def test_default_settings_are_sqlite_with_the_orm_broker():
    result = _settings_in_subprocess(
        {"DJANGO_DEBUG": "1"}, "s.DATABASES['default']['ENGINE'], s.Q_CLUSTER.get('orm'), s.SANDBOX_ENABLED"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.sqlite3 default True"
