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
import socket
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable

import requests
from requests.adapters import HTTPAdapter
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


# --- connecting to the address that was checked (no DNS rebinding) -------------------------------


def address_is_public(address: str) -> bool:
    """Globally routable unicast: not loopback, private, link-local, shared (100.64/10), reserved,
    multicast or unspecified; an IPv4-mapped IPv6 address is judged as its IPv4 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and not ip.is_unspecified


def resolve_public(host: str, port: int) -> str:
    """Resolve once; every address must be public (one private answer refuses the host); the first
    is the one to connect to."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"the host {host} does not resolve") from exc
    addresses = [str(answer[4][0]) for answer in answers]
    if not addresses:
        raise UnsafeUrl(f"the host {host} does not resolve")
    refused = [a for a in addresses if not address_is_public(a)]
    if refused:
        raise UnsafeUrl(f"the host {host} resolves to a non-public address ({refused[0]})")
    return addresses[0]


class PinnedPublicAdapter(HTTPAdapter):
    """An https transport that resolves the host once, refuses non-public addresses, and connects
    to the very address it checked, with the host name kept for the Host header, SNI and the
    certificate check. A second resolution by the connection (which DNS rebinding exploits)
    never happens: the pool is keyed by the IP address."""

    def get_connection_with_tls_context(self, request: Any, verify: Any, proxies: Any = None, cert: Any = None) -> Any:
        parts = parse_url(request.url)
        if (parts.scheme or "").lower() != "https" or not parts.host:
            raise UnsafeUrl("only https is fetched")
        port = parts.port or 443
        address = resolve_public(parts.host, port)
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        host_params["host"] = address
        # urllib3 pools accept both (HTTPSConnectionPool); the requests stubs' _PoolKwargs omits them.
        pool_kwargs["server_hostname"] = parts.host  # type: ignore[typeddict-unknown-key]
        pool_kwargs["assert_hostname"] = parts.host  # type: ignore[typeddict-unknown-key]
        request.headers["Host"] = parts.host if port == 443 else f"{parts.host}:{port}"
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)


def pinned_public_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: we connect to the checked address
    adapter = PinnedPublicAdapter(max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)  # refuses: only https
    return session
