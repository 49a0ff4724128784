"""The connector's admin history (Django's LogEntry): every save and every action, in plain words.

Saves are recorded by the admin itself (only the fields that changed: see ConnectorForm.changed_data);
actions that are not saves (connect, disconnect, fetch all, cancel, replay, push segment, check) are
recorded here, on the connector, so its History page tells the whole story.
"""

from __future__ import annotations

from django.contrib.admin.models import CHANGE, LogEntry
from django.http import HttpRequest

from sync.models import Connector


def history_record(request: HttpRequest, connector: Connector, message: str) -> LogEntry | None:
    """Add one line to the connector's history, by the member of staff of this request."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return LogEntry.objects.log_actions(
        user_id=user.pk,
        queryset=[connector],
        action_flag=CHANGE,
        change_message=message,
        single_object=True,
    )
