"""Work a connector save starts but never waits for: queued after commit, run by the worker.

A save must not wait on Intercom or Hull (a slow Intercom held a save for 157 s while the database
write lock was held). The admin enqueues the follow-up once the transaction has committed, says on
the page what it started, and the dashboard reads the outcome back from django-q2's task results
(grouped per connector, so no table of our own is needed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from sync.models import Connector

logger = logging.getLogger(__name__)

CREATE_ATTRIBUTES = "Creating Intercom data attributes"
TASK = "settings_ui.background.data_attributes_create"


def task_group(connector: Connector) -> str:
    return f"connector-{connector.pk}-admin"


def data_attributes_create_later(connector: Connector) -> None:
    """Queue the creation of missing Intercom data attributes, once the save has committed."""
    from django_q.tasks import async_task

    group = task_group(connector)
    connector_id = connector.pk
    transaction.on_commit(lambda: async_task(TASK, connector_id, task_name=CREATE_ATTRIBUTES, group=group))


def data_attributes_create(connector_id: int) -> dict:
    """The task: create in Intercom the custom attributes the outgoing mappings write.

    Returns {"ok": bool, "text": plain words} for the dashboard. A failure is returned, not raised:
    the words are for a support person (the traceback goes to the worker log), and "Sync data
    attributes to Intercom" is the way to try again once Intercom answers.
    """
    from settings_ui.schema import forget_data_attributes
    from sync.outgoing.attributes import data_attributes_sync

    connector = Connector.objects.get(pk=connector_id)
    try:
        created = data_attributes_sync(connector=connector) or []
    except Exception as error:
        logger.warning("admin.background.failed", extra={"connector": connector_id, "task": CREATE_ATTRIBUTES}, exc_info=True)
        return {
            "ok": False,
            "text": (
                f"Intercom did not create the new data attributes ({type(error).__name__}). Outgoing fields mapped to "
                "them are not written until they exist. Use “Check connector”, then “Sync data attributes to "
                "Intercom” on the connector list to try again."
            ),
        }
    finally:
        forget_data_attributes(connector)
    if not created:
        return {"ok": True, "text": "Every mapped Intercom attribute already exists."}
    return {"ok": True, "text": "Created in Intercom: " + ", ".join(f"{model} attribute “{name}”" for model, name in created) + "."}


@dataclass
class BackgroundResult:
    name: str
    ok: bool
    text: str
    finished: datetime | None


def background_results(connector: Connector, limit: int = 5) -> list[BackgroundResult]:
    """The latest follow-up tasks of this connector, newest first, as a support person reads them."""
    from django_q.models import Task

    results = []
    for task in Task.objects.filter(group=task_group(connector)).order_by("-stopped")[:limit]:
        result = task.result
        if task.success and isinstance(result, dict):
            ok, text = bool(result.get("ok")), str(result.get("text", ""))
        else:  # the task itself crashed: django-q2 keeps "<error> : <traceback>", meant for developers
            ok, text = False, "It stopped on an unexpected error; the worker log has the details."
        results.append(BackgroundResult(name=task.name, ok=ok, text=text, finished=task.stopped))
    return results
