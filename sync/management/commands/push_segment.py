"""`manage.py push_segment --connector <slug> --segment <segment id>`.

Sends a Hull user segment to Intercom through an export: asks Hull for the export
(sync/services/ops.py `segment_push`); Hull then posts it to this connector's `/batch` endpoint,
where it is synced like any batch ("Send Batch As" decides users or leads; filters bypassed).
Progress of the sync itself shows on the dashboard and in the sync log.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sync.models import Connector
from sync.services.ops import SegmentPushRefused, segment_push


class Command(BaseCommand):
    help = "Send a Hull segment's users to Intercom (through a Hull export delivered to /batch)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--connector", required=True, help="Connector slug")
        parser.add_argument("--segment", required=True, help="Hull user segment id")

    def handle(self, *args: Any, connector: str, segment: str, **options: Any) -> None:
        from sync.hull.client import HullApiError

        found = Connector.objects.filter(slug=connector).first()
        if found is None:
            raise CommandError(f"No connector with slug {connector!r}.")
        try:
            push = segment_push(connector=found, segment_id=segment)
        except SegmentPushRefused as refusal:
            raise CommandError(f"Cannot push segment {segment}: {refusal}") from refusal
        except HullApiError as error:
            raise CommandError(f"Hull refused the export of segment {segment}: {error}") from error
        self.stdout.write(f"Export of segment {push.segment_name} ({push.segment_id}) requested from Hull.")
        self.stdout.write(f"Hull will deliver it to {push.batch_url}")
        self.stdout.write(
            self.style.SUCCESS(f"Its users will be sent to Intercom as {found.get_send_batch_as_display()}; follow it on the dashboard.")
        )
