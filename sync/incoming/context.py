"""What one incoming unit of work (a webhook delivery, a fetch page) needs, loaded once.

Mappings and claims are cached on the connector instance (sync/mapping.py); the Intercom client
is created only when a transform really calls the API (conversation events need none), and the
workspace's tag names are listed at most once per unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sync.models import Connector, HullSegment, WebhookDelivery


@dataclass
class IncomingContext:
    connector: Connector
    client: Any = None  # an IntercomClient; created lazily by `intercom`
    delivery: WebhookDelivery | None = None  # the webhook being processed, for its SyncLog rows
    _tag_names: dict[str, str] | None = field(default=None, repr=False)

    @property
    def intercom(self) -> Any:
        if self.client is None:
            from sync.intercom.client import IntercomClient

            self.client = IntercomClient.for_connector(self.connector)
        return self.client

    @cached_property
    def segment_names(self) -> set[str]:
        """Names of the Hull user segments: a tag with such a name mirrors a segment (no tag event)."""
        names = HullSegment.objects.filter(connector=self.connector, kind=HullSegment.Kind.USER, deleted=False)
        return {name.casefold() for name in names.values_list("name", flat=True)}

    def tag_name(self, tag_id: str) -> str | None:
        """A tag's name from the workspace's tag list, listed once per unit of work."""
        if self._tag_names is None:
            listing = self.intercom.list_tags()
            tags = listing.get("data", []) if isinstance(listing, dict) else listing
            self._tag_names = {str(tag.get("id")): tag.get("name") for tag in tags or [] if tag.get("id") is not None}
        return self._tag_names.get(str(tag_id))
