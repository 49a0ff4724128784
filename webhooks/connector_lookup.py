"""The connector of a public endpoint's URL slug, cached in process memory for a few seconds.

Every Hull notification and Intercom webhook starts with this lookup; without a cache it is a
query plus the decryption of the connector's secrets on every request. The cache is per process
(never Redis: it holds decrypted secrets) and short (`CONNECTOR_LOOKUP_TTL`, default 5 s): a save
in this process clears it at once (signal), other processes see an edit within the TTL. Unknown
slugs are not cached (a caller inventing slugs must not grow it); the failed-attempt throttle
bounds how often they reach the database.
"""

from __future__ import annotations

import copy
import threading
import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from sync.models import Connector

_MAX_ENTRIES = 1000
_lock = threading.Lock()
_entries: dict[str, tuple[float, Connector]] = {}


def _ttl() -> float:
    return float(getattr(settings, "CONNECTOR_LOOKUP_TTL", 5.0))


def connector_for_slug(slug: str | None) -> Connector | None:
    """The connector (a private copy: callers may change it) or None when the slug is unknown."""
    if not slug:
        return None
    ttl, now = _ttl(), time.monotonic()
    entry = _entries.get(slug) if ttl > 0 else None
    if entry is not None and entry[0] > now:
        return copy.copy(entry[1])
    connector = Connector.objects.filter(slug=slug).first()
    if connector is not None and ttl > 0:
        with _lock:
            if len(_entries) >= _MAX_ENTRIES:
                _entries.clear()
            _entries[slug] = (now + ttl, connector)
        return copy.copy(connector)
    return connector


def clear() -> None:
    with _lock:
        _entries.clear()


@receiver(post_save, sender=Connector, dispatch_uid="connector_lookup_clear_on_save")
@receiver(post_delete, sender=Connector, dispatch_uid="connector_lookup_clear_on_delete")
def _connector_changed(**kwargs: object) -> None:
    clear()
