"""A connector wired to this deployment's own sandboxes over HTTP: the demo, the load benchmark and
the scale-out tests all talk to Hull and Intercom this way."""

from __future__ import annotations

from typing import Any

from sandbox.intercom.models import Workspace
from sync.models import Connector
from sync.services.connectors import connector_create


# Intercom's default limit: 10,000 calls per minute per app, enforced in 10-second windows.
INTERCOM_DEFAULT_RATE_LIMIT = 1666


def connector_on_http_sandboxes(
    *, base_url: str, token: str, workspace: str, rate_limit: int = INTERCOM_DEFAULT_RATE_LIMIT, **fields: Any
) -> Connector:
    """Create a connector whose Hull calls (firehose, REST: status, checks, segments) and Intercom
    API are the sandboxes served at `base_url`, and the sandbox workspace its `token` opens
    (`rate_limit` calls per 10-second window; 0 = none).

    The two sandbox URLs are not editable in the admin and are used only while SANDBOX_ENABLED is
    on (sync/intercom/regions.py, sync/hull/client.hull_urls): nothing of the demo goes to the
    real Hull or Intercom, and no production connector can be pointed at another host this way.

    `fields` are the connector's own (name, slug, Hull credentials, filters, ...).
    """
    base_url = base_url.rstrip("/")
    connector = connector_create(
        hull_firehose_url=f"{base_url}/sandbox/hull/firehose",
        intercom_api_base=f"{base_url}/sandbox/intercom",
        intercom_access_token=token,
        intercom_workspace_id=workspace,
        **fields,
    )
    Workspace.objects.update_or_create(
        token=token,
        defaults={"id_code": workspace, "name": fields["name"], "rate_limit": rate_limit, "rate_window_seconds": 10},
    )
    return connector
