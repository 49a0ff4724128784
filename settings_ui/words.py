"""Error texts from the sync engine and the clients, reworded for a support person.

The stored text stays as it was (operators and the worker log read it); the admin shows this.
"""

from __future__ import annotations

import re

# Python's names of network failures, as a support person would say them.
ERROR_WORDS = {
    "ConnectionError": "the connection failed",
    "ConnectTimeout": "the connection timed out",
    "ReadTimeout": "no answer in time",
    "Timeout": "no answer in time",
    "SSLError": "the secure connection failed",
    "TooManyRedirects": "too many redirects",
    "ChunkedEncodingError": "the answer was cut off",
}

# The Intercom client's "unavailable ConnectionError after 3 attempts".
_UNAVAILABLE = re.compile(r"\bunavailable (\w+) after (\d+) attempts?")


def error_words(text: str) -> str:
    """`text` with HTTP calls and Python error names put into words; the rest is kept."""
    if not text:
        return text

    def unavailable(match: re.Match) -> str:
        tries = int(match.group(2))
        reason = ERROR_WORDS.get(match.group(1), "an unexpected error")
        return f"Intercom could not be reached ({reason}, {tries} {'try' if tries == 1 else 'tries'}); replay it once Intercom answers"

    text = _UNAVAILABLE.sub(unavailable, text)
    text = re.sub(r" (?:GET|POST|PUT|PATCH|DELETE) /[\w/.{}-]+", "", text)
    return re.sub(r"\b(\w+(?:Error|Timeout|Redirects))\b", lambda m: ERROR_WORDS.get(m.group(1), "an unexpected error"), text)
