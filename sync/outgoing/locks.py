"""One lock per (workspace, identity) around an outgoing contact's resolve -> create -> link.

Intercom's search shows a new contact only after seconds to minutes, and leads have nothing
unique that would make a second create answer 409. Two workers pushing the same new lead at once
(two notifications, two qclusters) would both find nothing and both create it. So the push of an
identity (its Hull id, its normalised email, its external_id) holds a lock while it resolves the
contact and records the IdentityLink; the second push waits, then finds the link. The 409 stays
the last guard for users.

The lock is a row of `IdentityLock` (insert = take, delete = release): one implementation that
works across threads and processes on PostgreSQL and on SQLite, without a Redis dependency. Keys
are taken in sorted order (no deadlock between two pushes sharing two identities). A holder that
died leaves a row that expires after `LOCK_TTL`.

After a create whose outcome is unknown (IntercomOutcomeUnknown: Intercom may have made the
contact), the rows stay, marked "unsettled", until Intercom's search can show that contact:
another push of the identity meanwhile halts (IdentityUnsettled) instead of creating a twin.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.db import IntegrityError, transaction
from django.utils import timezone

from sync.intercom.errors import IntercomOutcomeUnknown
from sync.models import IdentityLock

LOCK_TTL = timedelta(seconds=60)  # far above one contact's resolve + create (a few HTTP calls)
LOCK_WAIT = 90.0  # seconds a push waits for another; past LOCK_TTL a dead holder's row is taken over
POLL_FIRST, POLL_MAX = 0.02, 0.5  # seconds between attempts, growing
UNSETTLED = "unsettled"
# How long an identity whose create had an unknown outcome stays closed: Intercom's search shows a
# new contact "within a few minutes" (the same delay as notifications.SEARCH_SETTLE, the resume).
UNSETTLED_FOR = timedelta(minutes=5)


class IdentityLockTimeout(Exception):
    """Another push kept the identity longer than LOCK_WAIT (it refreshes nothing, so it is stuck)."""


class IdentityUnsettled(IntercomOutcomeUnknown):
    """An earlier create of this identity had an unknown outcome and Intercom's search has not settled."""


def normalise_email(value: object) -> str:
    """Emails compare case-insensitively and without surrounding whitespace (Intercom's search does)."""
    return str(value or "").strip().lower()


def identity_keys(workspace_key: str, entity: str, *, hull_id: str = "", email: str = "", external_id: str = "") -> list[str]:
    parts = [("hull", hull_id), ("email", normalise_email(email)), ("external_id", str(external_id or "").strip())]
    keys = set()
    for kind, value in parts:
        if value:
            digest = hashlib.sha256(f"{entity}|{kind}|{value}".encode()).hexdigest()[:40]
            keys.add(f"{workspace_key[:60]}:{digest}")
    return sorted(keys)


def _intercom_now() -> datetime:
    """Intercom-side time (the client's clock: the sandbox's in tests) for the unsettled wait, which
    is about Intercom's search index, not about our processes."""
    from sync.intercom import client

    return datetime.fromtimestamp(client.default_clock(), tz=dt_timezone.utc)


def _try_take(key: str, owner: str) -> bool:
    now = timezone.now()
    try:
        with transaction.atomic():  # a savepoint when the caller holds a transaction
            IdentityLock.objects.create(key=key, owner=owner, expires_at=now + LOCK_TTL)
        return True
    except IntegrityError:
        pass
    held = IdentityLock.objects.filter(key=key).values_list("owner", "expires_at").first()
    if held is None:
        return False  # released meanwhile: try again at once
    holder, expires_at = held
    if expires_at > (_intercom_now() if holder == UNSETTLED else now):
        if holder == UNSETTLED:
            raise IdentityUnsettled(
                "An earlier create of this contact may have been carried out; waiting for Intercom's search to show it",
                status=None, code="outcome_unknown",
            )  # fmt: skip
        return False
    # The holder died (or the unsettled wait is over): take it over, unless someone else just did.
    return IdentityLock.objects.filter(key=key, owner=holder, expires_at=expires_at).update(
        owner=owner, expires_at=now + LOCK_TTL
    ) == 1


@contextmanager
def identity_lock(keys: Iterable[str], *, settle: timedelta | None = None) -> Iterator[None]:
    """Hold every key (sorted) for the block. When the block raises IntercomOutcomeUnknown, the keys
    stay held as "unsettled" for `settle` (Intercom's search delay) instead of being released."""
    owner = uuid.uuid4().hex
    taken: list[str] = []
    try:
        for key in sorted(set(keys)):
            deadline = time.monotonic() + LOCK_WAIT
            pause = POLL_FIRST
            while not _try_take(key, owner):
                if time.monotonic() > deadline:
                    raise IdentityLockTimeout(f"identity {key} stayed locked for {LOCK_WAIT:.0f} s")
                time.sleep(pause)
                pause = min(POLL_MAX, pause * 2)
            taken.append(key)
        yield
    except IntercomOutcomeUnknown as exc:
        if settle is not None and taken and not isinstance(exc, IdentityUnsettled):
            IdentityLock.objects.filter(key__in=taken, owner=owner).update(owner=UNSETTLED, expires_at=_intercom_now() + settle)
            taken = []
        raise
    finally:
        if taken:
            IdentityLock.objects.filter(key__in=taken, owner=owner).delete()
