"""Conversation webhooks -> Hull event properties (docs/intercom-behaviour.md#conversation-events).

Two payload shapes arrive: Hull's fixtures are 1.x conversations (`user`, `assignee`,
`conversation_message`, `links.conversation_web`); 2.x sends `contacts.contacts[]`, `source`,
`admin_assignee_id` and no web link (docs/intercom-api.md#conversations). `ConversationView` reads
both the same way so each topic's property list is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sync.incoming.payloads import IntercomNotification, dotted_get

INTERCOM_APP_URL = "https://app.intercom.com/a/apps"


@dataclass(frozen=True)
class ConversationView:
    item: Mapping[str, Any]
    app_id: str

    @property
    def contact(self) -> dict[str, Any]:
        """The conversation's contact: 1.x `user`, 2.x `contacts.contacts[0]` (or a user/lead author)."""
        user = self.item.get("user")
        if isinstance(user, Mapping) and user.get("id"):
            return dict(user)
        contacts = dotted_get(self.item, "contacts.contacts") or []
        if contacts and isinstance(contacts[0], Mapping):
            return dict(contacts[0])
        author = dotted_get(self.item, "source.author") or {}
        if author.get("type") in ("user", "lead", "contact") and author.get("id"):
            return dict(author)
        return {}

    @property
    def first_message(self) -> Mapping[str, Any]:
        return self.item.get("conversation_message") or self.item.get("source") or {}

    @property
    def first_part(self) -> Mapping[str, Any]:
        parts = dotted_get(self.item, "conversation_parts.conversation_parts") or []
        return parts[0] if parts and isinstance(parts[0], Mapping) else {}

    @property
    def assignee(self) -> Mapping[str, Any]:
        assignee = self.item.get("assignee")
        if isinstance(assignee, Mapping):
            return assignee
        if self.item.get("admin_assignee_id") is not None:
            return {"type": "admin", "id": str(self.item["admin_assignee_id"])}
        return {}

    @property
    def link(self) -> str | None:
        link = dotted_get(self.item, "links.conversation_web")
        if link:
            return link
        if self.app_id and self.item.get("id"):
            return f"{INTERCOM_APP_URL}/{self.app_id}/conversations/{self.item['id']}"
        return None

    def common(self) -> dict[str, Any]:
        assignee = self.assignee
        return {
            "link": self.link,
            "assignee_name": assignee.get("name"),
            "assignee_email": assignee.get("email"),
            "assignee_id": assignee.get("id"),
        }


def _message_from_first(view: ConversationView) -> dict[str, Any]:
    return {"message": view.first_message.get("body"), "initiated": dotted_get(view.first_message, "author.type")}


def _message_from_part(view: ConversationView) -> dict[str, Any]:
    return {"message": view.first_part.get("body"), "initiated": dotted_get(view.first_part, "author.type")}


def _assigned(view: ConversationView) -> dict[str, Any]:
    return {"initiated": view.assignee.get("type"), "to": view.contact.get("id"), "admin": view.assignee.get("id")}


def _admin(view: ConversationView) -> dict[str, Any]:
    return {"admin": view.assignee.get("id")}


def _noted(view: ConversationView) -> dict[str, Any]:
    return {
        "initiated": dotted_get(view.first_part, "author.type"),
        "author": dotted_get(view.first_part, "author.name"),
        "note": view.first_part.get("body"),
    }


def _tag_added(view: ConversationView) -> dict[str, Any]:
    tags = dotted_get(view.item, "tags_added.tags") or dotted_get(view.first_part, "tags") or []
    first = tags[0] if tags and isinstance(tags[0], Mapping) else {}
    return {**_message_from_first(view), "tags_added": first.get("name")}


def _redacted(view: ConversationView) -> dict[str, Any]:
    return {"message": view.first_part.get("body"), "initiated": dotted_get(view.first_message, "author.type")}


def _nothing(view: ConversationView) -> dict[str, Any]:
    return {}


PropertyReader = Callable[[ConversationView], dict[str, Any]]

# topic -> (Hull event name exactly as the spec table writes it, extra properties)
CONVERSATION_EVENTS: dict[str, tuple[str, PropertyReader]] = {
    "conversation.user.created": ("User started conversation", _message_from_first),
    "conversation.user.replied": ("User replied to conversation", _message_from_part),
    "conversation.admin.replied": ("Admin replied to conversation", _message_from_part),
    "conversation.admin.single.created": ("Admin started conversation", _message_from_first),
    "conversation.admin.assigned": ("Admin assigned conversation", _assigned),
    "conversation.admin.opened": ("Admin opened conversation", _admin),
    "conversation.admin.closed": ("Admin closed conversation", _admin),
    "conversation.admin.noted": ("Admin added note to conversation", _noted),
    "conversation.admin.snoozed": ("Admin snoozed conversation", _nothing),
    "conversation.admin.unsnoozed": ("Admin unsnoozed conversation", _nothing),
    "conversation_part.tag.created": ("Conversation Part Tag Added", _tag_added),
    "conversation_part.redacted": ("Conversation Part Redacted", _redacted),
}


def conversation_event_properties(note: IntercomNotification, reader: PropertyReader) -> dict[str, Any]:
    """`topic`, the common properties and the topic's own, with null values left out (docs/intercom-behaviour.md#conversation-events)."""
    view = ConversationView(note.item, note.app_id)
    properties = {"topic": note.topic, **view.common(), **reader(view)}
    return {key: value for key, value in properties.items() if value is not None}
