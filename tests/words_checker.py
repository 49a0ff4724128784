"""Finds raw codes in what an admin page shows: camelCase, backticks, action and reason codes, API paths.

Used by the admin tests and the browser walk. Text inside <code>/<pre> (values staff copy, such as
the webhook URL or a payload), form controls, scripts and the list filters (where codes are meant
to be picked) is not "shown text".
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

SKIPPED_TAGS = {"code", "pre", "script", "style", "textarea", "select", "option", "datalist", "template", "svg", "title", "head"}
SKIPPED_IDS = {"changelist-filter"}
VOID_TAGS = {"input", "br", "img", "hr", "meta", "link", "source", "col", "wbr", "area", "base", "embed", "param", "track"}

PATTERNS = {
    "camelCase": re.compile(r"\b[a-z]+[A-Z][A-Za-z]*\b"),
    "PascalCase error name": re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)+\b"),
    "backtick": re.compile(r"`"),
    "action code": re.compile(r"\b(?:incoming|outgoing)\.(?:user|lead|account|company|event)s?\.\w+"),
    "reason code": re.compile(r"\b[A-Z]{2,}_[A-Z0-9_]+\b|\b[a-z]+_[a-z]+_[a-z_]+\b"),
    "API call": re.compile(r"\b(?:GET|POST|PUT|PATCH|DELETE) /"),
    "developer phrase": re.compile(
        r"after \d+ attempts|duplicate data for|not in the spec|Stable reason code|Indexes already done", re.IGNORECASE
    ),
}
# Names of things, not codes: products and words that happen to look like camelCase.
ALLOWED = {"JavaScript", "GitHub", "PostgreSQL", "HubSpot", "DevTools"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []  # one entry per open element: is its content skipped?
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID_TAGS:
            return
        attributes = dict(attrs)
        # A tabular inline's row title (td.original) is hidden by the connector page's CSS.
        hidden = "hidden" in attributes or (tag == "td" and "original" in (attributes.get("class") or "").split())
        skipped = (self.stack and self.stack[-1]) or tag in SKIPPED_TAGS or attributes.get("id") in SKIPPED_IDS or hidden
        self.stack.append(bool(skipped))

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID_TAGS and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not (self.stack and self.stack[-1]):
            self.chunks.append(data)


def shown_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.chunks).split())


def raw_codes(html: str) -> list[str]:
    """Each raw code found in the page's shown text, with its kind and a little context."""
    return raw_codes_in_text(shown_text(html))


def raw_codes_in_text(text: str) -> list[str]:
    """The same check on text already taken from a page (the browser's visible text)."""
    text = " ".join(text.split())
    found = []
    for kind, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            if match.group(0) in ALLOWED:
                continue
            start = max(match.start() - 40, 0)
            found.append(f"{kind}: …{text[start:match.end() + 40]}…")
    return found
