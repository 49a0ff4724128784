"""Reporting the connector's status to Hull (`PUT /api/v1/<id>/status`, docs/hull-protocol.md#status).

Hull polls `/status` and its framework also PUTs the same object back, so the dashboard shows it
even between polls. The status itself comes from `sync.services.status.connector_status`, shared
with the admin dashboard; this adds the queue-depth warning the flow control knows about.
"""

from __future__ import annotations

import logging

from sync.hull.client import HullApiError, HullClient
from sync.outgoing.flow_control import MAX_PENDING_NOTIFICATIONS, pending_depth
from sync.models import Connector
from sync.services.status import SETUP_REQUIRED, WARNING, ConnectorStatus, connector_status

logger = logging.getLogger("sync.services.hull_status")


def hull_status(*, connector: Connector) -> ConnectorStatus:
    """The status object Hull shows: ok / warning / error / setupRequired, with messages."""
    result = connector_status(connector=connector)
    if result.status != SETUP_REQUIRED:
        depth = pending_depth(connector)
        if depth > MAX_PENDING_NOTIFICATIONS:
            result.add(WARNING, f"{depth} notifications are queued: Hull is being asked to slow down.")
    return result


def hull_status_report(*, connector: Connector) -> ConnectorStatus:
    """Compute the status and PUT it to Hull; a Hull failure is logged, never raised."""
    result = hull_status(connector=connector)
    if not connector.is_hull_configured:
        return result
    try:
        HullClient.for_connector(connector).put_status(result.status, result.messages)
    except HullApiError as exc:
        logger.warning("hull.status.report-failed", extra={"connector": connector.pk, "status_code": exc.status})
    return result
