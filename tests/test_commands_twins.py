"""The command twins of "Cancel running fetch-all" and "Sync data attributes": the same service as the admin."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sync.models import Direction, FieldMapping, SyncCursor


def test_cancel_fetch_all_stops_the_running_run_like_the_admin_action(connector):
    from sync.incoming.fetch import connector_fetch_all

    connector_fetch_all(connector=connector, stream="users", enqueue=False)
    out = StringIO()
    call_command("cancel_fetch_all", "--connector", connector.slug, stdout=out)
    cursor = SyncCursor.objects.get(connector=connector, kind=SyncCursor.Kind.FETCH_ALL, stream="users")
    assert cursor.status == SyncCursor.Status.CANCELLED
    assert "fetch all users: Cancelled" in out.getvalue()


def test_sync_data_attributes_creates_the_missing_intercom_attributes(connector, intercom_sandbox):
    FieldMapping.objects.create(
        connector=connector, entity="user", direction=Direction.OUTGOING, hull_attribute="traits_plan", intercom_attribute="plan"
    )
    out = StringIO()
    call_command("sync_data_attributes", "--connector", connector.slug, stdout=out)
    assert "created contact attribute plan" in out.getvalue()
    out = StringIO()
    call_command("sync_data_attributes", "--connector", connector.slug, stdout=out)
    assert "already exists" in out.getvalue()


def test_the_twins_name_an_unknown_connector(db):
    with pytest.raises(CommandError, match="No connector"):
        call_command("cancel_fetch_all", "--connector", "nobody")
    with pytest.raises(CommandError, match="No connector"):
        call_command("sync_data_attributes", "--connector", "nobody")
