"""What one outgoing run shares between its messages: clients, caches, the sync-log writer.

The firehose batch is shared by the worker threads of a notification (records from many messages
go out in one POST of up to 100), so it is wrapped in a lock here. The Intercom tag list is cached
per workspace for a minute (docs/intercom-behaviour.md#segments-as-tags: Hull's connector does the same), across notifications.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sync.models import Connector, Direction, HullNotification, SyncLog
from sync.synclog import log_outcome

if TYPE_CHECKING:
    from sync.outgoing.tags import BulkTags

logger = logging.getLogger("sync.outgoing")

TAG_CACHE_SECONDS = 60.0  # Intercom's tag list changes rarely; tags we create are added at once


class SharedFirehose:
    """A `sync.hull.firehose.FirehoseBatch` (or a stand-in) safe to share between threads."""

    def __init__(self, batch: Any) -> None:
        self._batch = batch
        self._lock = threading.Lock()
        self.records = 0

    def _call(self, name: str, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self.records += 1
            getattr(self._batch, name)(*args, **kwargs)

    def traits(self, user_claims: dict, traits: dict) -> None:
        self._call("traits", user_claims, traits)

    def account_traits(self, account_claims: dict, traits: dict) -> None:
        self._call("account_traits", account_claims, traits)

    def link_account(self, user_claims: dict, account_claims: dict) -> None:
        self._call("link_account", user_claims, account_claims)

    def alias(self, user_claims: dict, anonymous_id: str) -> None:
        self._call("alias", user_claims, anonymous_id)

    def flush(self) -> None:
        with self._lock:
            self._batch.flush()


class _NoFirehose:
    """Used when the connector has no Hull credentials: write-backs are dropped, with a warning."""

    def __getattr__(self, name: str) -> Any:
        def _drop(*args: Any, **kwargs: Any) -> None:
            logger.warning("outgoing.firehose.not-configured", extra={"call": name})

        return _drop


def open_firehose(connector: Connector) -> SharedFirehose:
    if not connector.is_hull_configured:
        return SharedFirehose(_NoFirehose())
    from sync.hull.client import HullClient
    from sync.hull.firehose import FirehoseBatch

    return SharedFirehose(FirehoseBatch(HullClient.for_connector(connector)))


# --- per-workspace tag cache -------------------------------------------------------------------


@dataclass
class _TagList:
    fetched_at: float
    by_name: dict[str, str] = field(default_factory=dict)  # exact name -> id
    by_id: dict[str, str] = field(default_factory=dict)


_tag_lists: dict[str, _TagList] = {}
_tag_lock = threading.Lock()
# Held while one thread loads a workspace's list or creates a tag, so threads of a notification
# do not all fetch the same list or create the same tag at once.
_tag_fetch_lock = threading.Lock()


class TagCache:
    """Intercom's tag list for one workspace, loaded at most once a minute, shared by threads."""

    def __init__(self, intercom: Any) -> None:
        self.intercom = intercom
        self.key = intercom.workspace_key

    def _cached(self) -> _TagList | None:
        with _tag_lock:
            cached = _tag_lists.get(self.key)
        if cached is not None and time.monotonic() - cached.fetched_at < TAG_CACHE_SECONDS:
            return cached
        return None

    def _list(self) -> _TagList:
        cached = self._cached()
        if cached is not None:
            return cached
        with _tag_fetch_lock:
            cached = self._cached()  # another thread may have loaded it while we waited
            if cached is not None:
                return cached
            return self._load()

    def _load(self) -> _TagList:
        answer = self.intercom.list_tags()
        fresh = _TagList(fetched_at=time.monotonic())
        for tag in answer.get("data") or []:
            fresh.by_name[str(tag.get("name"))] = str(tag.get("id"))
            fresh.by_id[str(tag.get("id"))] = str(tag.get("name"))
        with _tag_lock:
            _tag_lists[self.key] = fresh
        return fresh

    def id_for(self, name: str) -> str | None:
        """Exact-name lookup (untagging must never touch a tag that is merely similar)."""
        return self._list().by_name.get(name)

    def id_for_trimmed(self, name: str) -> str | None:
        """Lookup by trimmed name, as Hull's connector tags ("Lead Segment 3  " finds "Lead Segment 3")."""
        tags = self._list()
        wanted = name.strip()
        if wanted in tags.by_name:
            return tags.by_name[wanted]
        for existing, tag_id in tags.by_name.items():
            if existing.strip().lower() == wanted.lower():  # Intercom tag names are case-insensitive
                return tag_id
        return None

    def name_for(self, tag_id: str) -> str | None:
        with _tag_lock:
            cached = _tag_lists.get(self.key)
        if cached is not None and str(tag_id) in cached.by_id:
            return cached.by_id[str(tag_id)]
        return None

    def ensure(self, name: str) -> str:
        """The id of the tag named `name` (trimmed), created when Intercom has none."""
        tag_id = self.id_for_trimmed(name)
        if tag_id is not None:
            return tag_id
        with _tag_fetch_lock:
            tag_id = self.id_for_trimmed(name)
            if tag_id is None:
                # POST /tags returns the existing tag when the name is taken (case-insensitive).
                tag = self.intercom.create_tag(name.strip())
                self.remember(tag)
                tag_id = str(tag["id"])
        return tag_id

    def remember(self, tag: dict) -> None:
        with _tag_lock:
            cached = _tag_lists.get(self.key)
            if cached is not None and tag.get("id") is not None:
                cached.by_name[str(tag.get("name"))] = str(tag["id"])
                cached.by_id[str(tag["id"])] = str(tag.get("name"))


def forget_tags(workspace_key: str | None = None) -> None:
    """Drop cached tag lists (tests; a workspace reconnected)."""
    with _tag_lock:
        if workspace_key is None:
            _tag_lists.clear()
        else:
            _tag_lists.pop(workspace_key, None)


# --- the run context -----------------------------------------------------------------------------


@dataclass
class OutgoingContext:
    connector: Connector
    intercom: Any  # sync.intercom.client.IntercomClient
    firehose: SharedFirehose
    notification: HullNotification | None = None
    tags: TagCache = field(init=False)
    # Set by the batch runner (notifications._messages_sync) for the length of a batch: users' tag
    # adds are then shared between the batch's threads (sync/outgoing/tags.py#BulkTags).
    bulk_tags: BulkTags | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tags = TagCache(self.intercom)
        self._sent_payloads: list[tuple[str, str, str]] = []
        self._sent_lock = threading.Lock()

    def payload_written_back(self, entity: str, intercom_id: str, digest: str) -> None:
        """Remember a pushed payload whose write-back is queued; recorded once the firehose took it."""
        with self._sent_lock:
            self._sent_payloads.append((entity, intercom_id, digest))

    def pending_payload(self, entity: str, intercom_id: str) -> str | None:
        """The hash of a payload this run already pushed (not yet recorded), e.g. an account shared by users."""
        with self._sent_lock:
            for sent_entity, sent_id, digest in reversed(self._sent_payloads):
                if sent_entity == entity and sent_id == intercom_id:
                    return digest
        return None

    def record_sent_payloads(self) -> int:
        """After a successful firehose flush: store the hashes, so identical payloads are skipped.

        Recording earlier would let a run stopped between the push and the flush (rate-limit
        halt, Hull down) skip the entity on its retry, and its Intercom id would never reach Hull.
        """
        from django.db import transaction

        from sync.models import IdentityLink

        with self._sent_lock:
            sent, self._sent_payloads = self._sent_payloads, []
        with transaction.atomic():
            for entity, intercom_id, digest in sent:
                IdentityLink.objects.filter(connector=self.connector, entity=entity, intercom_id=intercom_id).update(
                    last_payload_hash=digest
                )
        return len(sent)

    def log(
        self,
        entity: str,
        status: str,
        *,
        reason: str = "",
        message: str = "",
        hull_id: str = "",
        intercom_id: str = "",
        email: str = "",
        external_id: str = "",
        data: dict[str, Any] | None = None,
    ) -> SyncLog:
        """One entity's SyncLog row, under Hull's names: users and leads log as `outgoing.user.*`."""
        kind = {"lead": "user", "user": "user", "account": "account", "event": "event"}[entity]
        return log_outcome(
            self.connector,
            direction=Direction.OUTGOING,
            entity=entity,
            status=status,
            action=f"outgoing.{kind}.{status}",
            reason=reason,
            message=message,
            hull_id=str(hull_id or ""),
            intercom_id=str(intercom_id or ""),
            email=str(email or ""),
            external_id=str(external_id or ""),
            data=data,
            notification=self.notification,
        )


def build_context(connector: Connector, notification: HullNotification | None = None) -> OutgoingContext:
    from sync.intercom.client import IntercomClient

    return OutgoingContext(
        connector=connector,
        intercom=IntercomClient.for_connector(connector),
        firehose=open_firehose(connector),
        notification=notification,
    )
