"""The one table of Intercom webhook topics: topic -> handler, and the topics we knowingly ignore.

Spec names (the API 1.x topics of the spec's table) and their API 2.5+ names
(docs/intercom-api.md#webhooks) point at the same handler. A topic in neither table is
"unsupported": stored, answered 200, logged, never an error (docs/decisions.md#webhook-topics).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from functools import partial

from sync.incoming.context import IncomingContext
from sync.incoming.conversations import CONVERSATION_EVENTS
from sync.incoming.handlers import (
    Outcome,
    company_deleted,
    company_upsert,
    contact_deleted,
    contact_signed_up,
    contact_tag_changed,
    contact_upsert,
    conversation_event,
)
from sync.incoming.payloads import IntercomNotification
from sync.incoming.consent import subscription_changed
from sync.incoming.support_context import conversation_rating_added, with_support_context
from sync.models import Connector

TopicHandler = Callable[[IncomingContext, IntercomNotification], Outcome]

_unsubscribed = partial(
    contact_upsert, event="Unsubscribed from emails", extra_traits={"{group}/unsubscribed_from_emails": True}
)
_added_email = partial(contact_upsert, role="lead", event="Updated email address", event_properties=("email",))

TOPIC_HANDLERS: dict[str, TopicHandler] = {
    # Conversations: one Hull event each, names exactly as in the spec table.
    # (each also keeps the person's support-context traits current: support_context.py)
    **{topic: with_support_context(partial(conversation_event, event=name, reader=reader)) for topic, (name, reader) in CONVERSATION_EVENTS.items()},
    "conversation.rating.added": conversation_rating_added,  # support-context traits only, no Hull event
    "granular.subscribe": subscription_changed,  # per subscription type: traits and an event (incoming/consent.py)
    "granular.unsubscribe": subscription_changed,
    # Contacts created / updated: upsert the Hull user of the contact's role.
    "user.created": partial(contact_upsert, role="user"),
    "contact.user.created": partial(contact_upsert, role="user"),
    "contact.created": partial(contact_upsert, role="lead"),
    "contact.lead.created": partial(contact_upsert, role="lead"),
    "contact.user.updated": partial(contact_upsert, role="user"),
    "contact.lead.updated": partial(contact_upsert, role="lead"),
    # Intercom sends `contact.unarchived`; `contact.unarchive` is the name our registry used first.
    "contact.unarchived": partial(contact_upsert, extra_traits={"{group}/deleted_at": None}),
    "contact.unarchive": partial(contact_upsert, extra_traits={"{group}/deleted_at": None}),
    # The spec's "Admin closed conversation" for visitor.signed_up is a copy error (docs/decisions.md#webhook-topics).
    "visitor.signed_up": partial(contact_upsert, role="user"),
    # Email changes: the user's email trait; a lead adding one is also an event.
    "user.email.updated": partial(contact_upsert, role="user"),
    "contact.email.updated": contact_upsert,
    "contact.added_email": _added_email,
    "contact.lead.added_email": _added_email,
    # Lead converted to user.
    "contact.signed_up": contact_signed_up,
    "contact.lead.signed_up": contact_signed_up,
    # Unsubscribed: event "Unsubscribed from emails" and the trait.
    "user.unsubscribed": partial(_unsubscribed, role="user"),
    "contact.unsubscribed": _unsubscribed,
    # Tags.
    "user.tag.created": partial(contact_tag_changed, added=True, role="user"),
    "user.tag.deleted": partial(contact_tag_changed, added=False, role="user"),
    "contact.user.tag.created": partial(contact_tag_changed, added=True, role="user"),
    "contact.user.tag.deleted": partial(contact_tag_changed, added=False, role="user"),
    "contact.tag.created": partial(contact_tag_changed, added=True, role="lead"),
    "contact.tag.deleted": partial(contact_tag_changed, added=False, role="lead"),
    "contact.lead.tag.created": partial(contact_tag_changed, added=True, role="lead"),
    "contact.lead.tag.deleted": partial(contact_tag_changed, added=False, role="lead"),
    # Deletions. 1.x `user.deleted` fired on archiving (spec caveats), hence `contact.archived` too.
    "user.deleted": contact_deleted,
    "contact.deleted": contact_deleted,
    "contact.archived": contact_deleted,
    # Companies. The spec's "Admin closed conversation" for company.created is a copy error.
    "company.created": company_upsert,
    "company.updated": company_upsert,
    "company.deleted": company_deleted,
}
SUPPORTED_TOPICS: list[str] = list(TOPIC_HANDLERS)

# Known topics with no Hull effect. Patterns are fnmatch patterns.
IGNORED_TOPICS: dict[str, str] = {
    "ping": "Intercom's subscription health check; always subscribed, carries no data.",
    "contact.merged": "the surviving contact's change arrives as contact.*.updated; Hull merges by claims.",
    "contact.subscribed": "subscription opt-ins have no attribute in the default mapping.",
    "contact.unsubscribed_from_sms": "SMS subscriptions are not mapped to Hull.",
    "user.unsubscribed_from_sms": "SMS subscriptions are not mapped to Hull (1.x name).",
    "company.contact.attached": "links come with the contact's companies on its next upsert.",
    "company.contact.detached": "links come with the contact's companies on its next upsert.",
    "conversation.admin.open.assigned": "not in the spec table; conversation.admin.assigned covers assignments.",
    "conversation.operator.replied": "bot replies are not in the spec table.",
    "conversation.priority.updated": "not in the spec table.",
    "conversation.read": "not in the spec table; Intercom may send it with a null id.",
    "conversation.contact.attached": "not in the spec table.",
    "conversation.contact.detached": "not in the spec table.",
    "conversation.deleted": "not in the spec table; Hull events are immutable.",
    "event.created": "Intercom data events are usually Hull's own, sent out by the connector (no loops).",
    "granular.*": "other granular topics are not mapped to Hull (subscribe/unsubscribe are).",
    "admin.*": "teammate activity, not customer data.",
    "ticket.*": "tickets are not synced.",
    "content_stat.*": "content statistics are not customer data.",
    "job.completed": "bulk job notifications are not customer data.",
    "call.*": "calls are not synced.",
    "article.*": "help-center articles are not customer data.",
}

# API 2.5 renamed the contact topics (docs/intercom-api.md#webhooks): a whitelist written with
# either name accepts both, so the default whitelist (1.x names) keeps working with a 2.x app.
TOPIC_ALIASES: dict[str, str] = {
    "contact.user.created": "user.created",
    "contact.lead.created": "contact.created",
    "contact.lead.signed_up": "contact.signed_up",
    "contact.lead.added_email": "contact.added_email",
    "contact.email.updated": "user.email.updated",
    "contact.deleted": "user.deleted",
    "contact.archived": "user.deleted",
    "contact.unsubscribed": "user.unsubscribed",
    "contact.user.tag.created": "user.tag.created",
    "contact.user.tag.deleted": "user.tag.deleted",
    "contact.lead.tag.created": "contact.tag.created",
    "contact.lead.tag.deleted": "contact.tag.deleted",
    "contact.unarchived": "contact.unarchive",
}
_REVERSE_ALIASES: dict[str, list[str]] = {}
for _new, _old in TOPIC_ALIASES.items():
    _REVERSE_ALIASES.setdefault(_old, []).append(_new)


def topic_matches(topic: str, patterns: Iterable[str]) -> bool:
    """The one wildcard matcher for topic lists: `conversation.*`, `contact.*.tag.*`, exact names."""
    return any(fnmatchcase(topic, str(pattern).strip()) for pattern in patterns or () if str(pattern).strip())


def topic_names(topic: str) -> list[str]:
    """The topic and its other-version names."""
    names = [topic]
    if topic in TOPIC_ALIASES:
        names.append(TOPIC_ALIASES[topic])
    names.extend(_REVERSE_ALIASES.get(topic, []))
    return names


def topic_is_whitelisted(connector: Connector, topic: str) -> bool:
    """Intercom Events Whitelist (`incoming_events`), by any name of the topic."""
    return any(topic_matches(name, connector.incoming_events or []) for name in topic_names(topic))


def ignored_reason(topic: str) -> str | None:
    for pattern, reason in IGNORED_TOPICS.items():
        if fnmatchcase(topic, pattern):
            return reason
    return None


def handler_for(topic: str) -> TopicHandler | None:
    return TOPIC_HANDLERS.get(topic)
