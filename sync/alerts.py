"""Alerts, the low-level half (importable from outgoing/, incoming/ and the lifecycle).

An alert: a connector in error, an Intercom token that stopped working, failures past a threshold.

One entry point raises an alert: `raise_alert(connector, kind, text)` (the lifecycle calls it
when Intercom refuses the token; `alerts_check` calls it for the error state and the failure
threshold). An alert stays on the dashboard until an editor acknowledges it; repeats of an open
alert only bump its count. The connector's editors get email digests through Django's mail
settings (EMAIL_* environment variables): at most one digest an hour per connector, listing every
alert raised or repeated since the last one, never one mail per entity. A digest that could not be
sent is tried again by the next sweep (`sync.tasks.check_alerts`, every 10 minutes).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from sync.models import Connector, ConnectorAlert

logger = logging.getLogger("sync.alerts")

DIGEST_EVERY = timedelta(hours=1)  # at most one email per connector in this time
QUIET_AFTER_ACK = timedelta(hours=1)  # an acknowledged condition that persists comes back after this
EDITORS_GROUP = "Connector editors"

Kind = ConnectorAlert.Kind


def raise_alert(connector: Connector, kind: str, text: str) -> ConnectorAlert | None:
    """Record (or repeat) an alert and send the digest if one is due. None while an acknowledgement is fresh."""
    now = timezone.now()
    with transaction.atomic():
        alert = (
            ConnectorAlert.objects.select_for_update()
            .filter(connector=connector, kind=kind, acknowledged_at__isnull=True)
            .order_by("-created_at")
            .first()
        )
        if alert is None:
            if ConnectorAlert.objects.filter(connector=connector, kind=kind, acknowledged_at__gte=now - QUIET_AFTER_ACK).exists():
                return None  # an editor just acknowledged this; the next sweep after the quiet hour raises it again
            alert = ConnectorAlert.objects.create(connector=connector, kind=kind, text=text[:5000])
        else:
            alert.text = text[:5000]
            alert.occurrences += 1
            alert.save(update_fields=["text", "occurrences", "last_seen_at"])
    logger.warning("alert.raised", extra={"connector": connector.pk, "kind": kind})
    digest_send_if_due(connector, now=now)
    return alert


def open_alerts(connector: Connector) -> list[ConnectorAlert]:
    return list(ConnectorAlert.objects.filter(connector=connector, acknowledged_at__isnull=True).order_by("-last_seen_at"))


def acknowledge_alerts(*, connector: Connector, actor: str, alert_id: str | int | None = None) -> int:
    """Acknowledge one alert (or all open ones) of the connector; returns how many."""
    rows = ConnectorAlert.objects.filter(connector=connector, acknowledged_at__isnull=True)
    if alert_id is not None:
        rows = rows.filter(pk=alert_id)
    return rows.update(acknowledged_at=timezone.now(), acknowledged_by=(actor or "")[:150])


def editor_emails(connector: Connector) -> list[str]:
    """Active staff who may change connectors (superusers, the editors group, or the permission), with an email."""
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    may_change = (
        Q(is_superuser=True)
        | Q(groups__name=EDITORS_GROUP)
        | Q(groups__permissions__codename="change_connector")
        | Q(user_permissions__codename="change_connector")
    )
    return sorted(set(users.filter(may_change).values_list("email", flat=True)))


def digest_send_if_due(connector: Connector, *, now: datetime | None = None) -> bool:
    """Email the open alerts raised or repeated since the last digest, unless one went out within the hour."""
    now = now or timezone.now()
    with transaction.atomic():
        alerts = list(
            ConnectorAlert.objects.select_for_update()
            .filter(connector=connector, acknowledged_at__isnull=True)
            .filter(Q(emailed_at__isnull=True) | Q(emailed_at__lt=F("last_seen_at")))
            .order_by("created_at")
        )
        if not alerts:
            return False
        last = ConnectorAlert.objects.filter(connector=connector, emailed_at__isnull=False).order_by("-emailed_at").first()
        if last is not None and last.emailed_at is not None and now - last.emailed_at < DIGEST_EVERY:
            return False  # the next sweep after the hour sends them together
        recipients = editor_emails(connector)
        if not recipients:
            logger.warning("alert.no_recipients", extra={"connector": connector.pk})
            return False
        subject = f"[Intercom connector] {connector.name}: {len(alerts)} alert(s)"
        lines = [f"The Intercom connector “{connector.name}” needs attention:", ""]
        for alert in alerts:
            seen = f" (seen {alert.occurrences} times)" if alert.occurrences > 1 else ""
            lines.append(f"- {alert.get_kind_display()}{seen}: {alert.text}")
        dashboard = f"{settings.PUBLIC_BASE_URL}/admin/sync/connector/{connector.pk}/dashboard/"
        lines += ["", f"Dashboard (acknowledge the alerts there): {dashboard}", "", "At most one such email is sent per hour per connector."]
        try:
            send_mail(subject, "\n".join(lines), None, recipients)
        except Exception:  # noqa: BLE001 - a mail server down must not fail the sync; the next sweep retries
            logger.exception("alert.mail_failed", extra={"connector": connector.pk})
            return False
        ConnectorAlert.objects.filter(pk__in=[a.pk for a in alerts]).update(emailed_at=now)
    logger.info("alert.digest_sent", extra={"connector": connector.pk, "alerts": len(alerts), "recipients": len(recipients)})
    return True
