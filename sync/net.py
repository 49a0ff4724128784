"""Outgoing URLs checked the way the transport reads them (docs/security.md "Where we connect").

`requests` hands every URL to urllib3's `parse_url`; a check done with another parser (urlsplit)
can see one host while the connection goes to another (`https://127.0.0.1\\.hullapp.io/` is
`127.0.0.1` to urllib3 and `*.hullapp.io` to urlsplit). So every host check here parses once with
urllib3's parser, refuses anything two parsers could read differently (backslashes, userinfo,
ports, percent-escapes, non-ASCII, IP literals, trailing dots), and hands back the URL rebuilt
from the parts it checked: the caller fetches that string, never the one it was given.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Iterable

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

# One DNS label: letters, digits, inner hyphens, at most 63 characters (RFC 1035, lower case).
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Path characters that need no escaping and mean the same to every parser.
_PATH = re.compile(r"^(/[A-Za-z0-9._~!$&'()*+,;=:@-]*)*$")
_QUERY = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@/?%-]*$")
# Printable ASCII without space, backslash, quote marks, angle brackets, braces and the like.
_RAW = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@/?#%\[\]-]+$")


class UnsafeUrl(ValueError):
    """The URL is not one we connect to; the message says why, in words."""


@dataclass(frozen=True)
class CheckedUrl:
    scheme: str
    host: str
    path: str
    query: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}{self.path or '/'}" + (f"?{self.query}" if self.query else "")


def is_dns_hostname(host: str) -> bool:
    """A plain DNS name with at least two labels, lower case, not an IP address in any spelling."""
    if not host or len(host) > 253 or host.endswith(".") or host != host.lower():
        return False
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return False
    # An all-numeric last label is an IPv4 address in some spelling (127.1, 2130706433, 0x7f.1).
    if labels[-1].isdigit() or re.fullmatch(r"0x[0-9a-f]*", labels[-1]):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def host_under(host: str, suffixes: Iterable[str]) -> bool:
    """`host` is one of `suffixes` or a subdomain of one (a label boundary, not a string suffix)."""
    return any(host == suffix or host.endswith("." + suffix) for suffix in (s.strip().lower() for s in suffixes) if suffix)


def check_url(
    url: str,
    *,
    schemes: tuple[str, ...] = ("https",),
    allowed_suffixes: Iterable[str] | None = None,
    allow_query: bool = False,
    allow_port: bool = False,
    allow_escaped_path: bool = False,
) -> CheckedUrl:
    """Parse `url` once with urllib3 (requests' own parser) and refuse anything ambiguous.

    `allowed_suffixes` None means any public DNS name (the address is checked at connect time).
    """
    if not isinstance(url, str) or not url:
        raise UnsafeUrl("no URL")
    if len(url) > 2048:
        raise UnsafeUrl("the URL is too long")
    if not url.isascii() or not _RAW.match(url):
        raise UnsafeUrl("the URL has characters outside plain ASCII (spaces, backslashes, unicode...)")
    if "\\" in url:
        raise UnsafeUrl("the URL has a backslash")
    try:
        parts = parse_url(url)
    except (LocationParseError, ValueError) as exc:
        raise UnsafeUrl(f"the URL does not parse: {exc}") from exc
    scheme = (parts.scheme or "").lower()
    if scheme not in schemes:
        raise UnsafeUrl(f"the scheme must be {' or '.join(schemes)}")
    if parts.auth is not None or "@" in (url.split("://", 1)[-1].split("/", 1)[0]):
        raise UnsafeUrl("the URL carries a user name or password")
    if parts.port is not None and not allow_port:
        raise UnsafeUrl("the URL names a port")
    host = parts.host or ""
    authority = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "%" in authority:
        raise UnsafeUrl("the host is percent-escaped")
    if host.startswith("[") or not is_dns_hostname(host) or authority.split(":", 1)[0] != host:
        raise UnsafeUrl("the host is not a plain DNS name (IP addresses, trailing dots, upper case are refused)")
    if allowed_suffixes is not None and not host_under(host, allowed_suffixes):
        raise UnsafeUrl(f"the host {host} is not an allowed host")
    if parts.fragment is not None:
        raise UnsafeUrl("the URL has a fragment")
    path = parts.path or "/"
    if "%" in path and not allow_escaped_path:
        raise UnsafeUrl("the URL path is percent-escaped")
    if not _PATH.match(path.replace("%", "")) or "/../" in path + "/" or "/./" in path + "/":
        raise UnsafeUrl("the URL path has unexpected characters or dot segments")
    query = parts.query or ""
    if query and not allow_query:
        raise UnsafeUrl("the URL has a query string")
    if query and not _QUERY.match(query):
        raise UnsafeUrl("the URL query has unexpected characters")
    if allow_port and parts.port is not None:
        host = f"{host}:{parts.port}"
    return CheckedUrl(scheme=scheme, host=host, path=path, query=query)
