"""The Hull client: one class, one request method, typed errors (docs/hull-protocol.md#credentials, #firehose).

The connector talks to Hull in two ways: the platform REST API (`https://<org>/api/v1/...`, its own
settings, status and segments) and the firehose (`https://firehose.<domain>`, every write to users,
accounts and events). Both authenticate with the connector id and secret in headers (docs/hull-protocol.md#rest-api); each
firehose record also carries an HS256 JWT naming its entity (docs/hull-protocol.md#entity-tokens), built here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import jwt
import requests
import urllib3

from sync.net import UnsafeUrl, check_url, host_under, is_dns_hostname, pinned_public_session  # noqa: F401 - UnsafeUrl is part of this module's errors

logger = logging.getLogger("sync.hull.client")

USER_AGENT = "Hull Python Connector (intercom) 0.1"
DEFAULT_TIMEOUT = 10.0  # seconds; Hull's own client uses 10 s for GETs
MAX_RETRIES = 2  # Hull's client retries twice on timeouts and >= 500
RETRY_BACKOFF = 0.25  # seconds, doubled per attempt

# docs/hull-protocol.md#entity-tokens: the only claim keys Hull accepts; anything else is silently dropped by its client.
USER_CLAIM_KEYS = ("id", "email", "external_id", "anonymous_id")
ACCOUNT_CLAIM_KEYS = ("id", "external_id", "domain", "anonymous_id")


class HullApiError(Exception):
    """A call to Hull failed. `status` is the HTTP status (None for transport errors)."""

    def __init__(self, message: str, *, status: int | None = None, url: str = "", body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.body = body


class HullUnauthorized(HullApiError):
    """401/403, or 404 on /app: the connector id or secret is wrong (Hull's ConnectorNotFound)."""


class HullNotFound(HullApiError):
    """404 on anything else."""


class HullServerError(HullApiError):
    """5xx after the retries."""


class HullUnavailable(HullApiError):
    """Timeouts and connection errors after the retries."""


class HullClaimsError(ValueError):
    """No usable claim to name the entity: Hull's client throws too (docs/hull-protocol.md#entity-tokens)."""


# --- claims and JWTs ---------------------------------------------------------------------------


def filter_claims(claims: Mapping[str, Any] | str | None, allowed: tuple[str, ...]) -> dict[str, Any]:
    """Keep the allowed claim keys with a value; a bare string is a Hull id (as in Hull's client)."""
    if claims is None:
        return {}
    if isinstance(claims, str):
        return {"id": claims} if claims else {}
    return {key: claims[key] for key in allowed if claims.get(key) not in (None, "")}


def entity_claims(
    connector_id: str,
    *,
    user: Mapping[str, Any] | str | None = None,
    account: Mapping[str, Any] | str | None = None,
    additional: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The JWT claims of docs/hull-protocol.md#entity-tokens: as user, as account, or (both given) user linked to account."""
    as_user = filter_claims(user, USER_CLAIM_KEYS)
    as_account = filter_claims(account, ACCOUNT_CLAIM_KEYS)
    if user is not None and not as_user:
        raise HullClaimsError("User claims need one of id, email, external_id, anonymous_id.")
    if account is not None and not as_account:
        raise HullClaimsError("Account claims need one of id, external_id, domain, anonymous_id.")
    if not as_user and not as_account:
        raise HullClaimsError("A firehose record needs user or account claims.")
    subject_type = "account" if as_account else "user"
    claims: dict[str, Any] = {"iss": connector_id, "iat": int(now if now is not None else time.time())}
    claims["io.hull.subjectType"] = subject_type
    if as_user:
        claims["io.hull.asUser"] = as_user
    if as_account:
        claims["io.hull.asAccount"] = as_account
    subject = as_account if subject_type == "account" else as_user
    if subject.get("id"):
        claims["sub"] = subject["id"]
    if additional:
        claims.update(additional)
    return claims


def entity_token(secret: str, connector_id: str, **kwargs: Any) -> str:
    """An HS256 JWT signed with the connector secret, for one firehose record's header."""
    return jwt.encode(entity_claims(connector_id, **kwargs), secret, algorithm="HS256")


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the client --------------------------------------------------------------------------------


class HullOrganizationInvalid(HullApiError):
    """The organization is not a bare Hull host name: nothing is sent (the secret would follow it)."""


def _organization_host(organization: str) -> str:
    host = (organization or "").strip()
    if not is_dns_hostname(host):
        raise HullOrganizationInvalid(
            f"The Hull organization must be a host name like acme.hullapp.io, not {organization[:80]!r}"
        )
    return host


def default_firehose_url(organization: str) -> str:
    """`https://firehose.<domain>` (§1.1); the org host is split at its first dot."""
    _namespace, _, domain = _organization_host(organization).partition(".")
    return f"https://firehose.{domain or organization}"


def hull_urls(connector: Any) -> tuple[str, str]:
    """(REST API base, firehose URL) of a connector: from its organization, a bare host under
    settings.HULL_ORGANIZATION_DOMAINS; else the deployment's overrides; in the demo (only while
    SANDBOX_ENABLED) the Hull sandbox the set-up wrote on the connector (docs/security.md)."""
    from django.conf import settings

    sandbox_firehose = (connector.hull_firehose_url or "").rstrip("/")
    if settings.SANDBOX_ENABLED and sandbox_firehose.endswith(SANDBOX_FIREHOSE_SUFFIX):
        sandbox = sandbox_firehose[: -len("/firehose")]
        return settings.HULL_API_BASE_OVERRIDE or f"{sandbox}/api/v1", settings.HULL_FIREHOSE_URL_OVERRIDE or sandbox_firehose
    organization = _organization_host(connector.hull_organization)
    if not host_under(organization, settings.HULL_ORGANIZATION_DOMAINS):
        raise HullOrganizationInvalid(f"The Hull organization {organization} is not under {', '.join(settings.HULL_ORGANIZATION_DOMAINS)}")
    api_base = settings.HULL_API_BASE_OVERRIDE or f"https://{organization}/api/v1"
    return api_base, settings.HULL_FIREHOSE_URL_OVERRIDE or default_firehose_url(organization)


SANDBOX_FIREHOSE_SUFFIX = "/sandbox/hull/firehose"


class HullClient:
    """Credentials of one connector and the one `_request` every Hull call goes through."""

    def __init__(
        self,
        connector_id: str,
        secret: str,
        organization: str,
        *,
        firehose_url: str | None = None,
        api_base: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.connector_id = connector_id
        self.secret = secret
        self.organization = organization
        self.api_base = api_base or f"https://{_organization_host(organization)}/api/v1"
        self.firehose_url = firehose_url or default_firehose_url(organization)
        self.timeout = timeout
        self.session = session or requests.Session()

    @classmethod
    def for_connector(cls, connector: Any, **kwargs: Any) -> HullClient:
        api_base, firehose_url = hull_urls(connector)
        return cls(
            connector.hull_id,
            connector.hull_secret,
            connector.hull_organization,
            firehose_url=firehose_url,
            api_base=api_base,
            **kwargs,
        )

    def __repr__(self) -> str:  # never show the secret
        return f"HullClient(id={self.connector_id!r}, organization={self.organization!r})"

    @property
    def headers(self) -> dict[str, str]:
        """docs/hull-protocol.md#rest-api: the connector's credentials on every call (the secret is the REST access token)."""
        return {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Hull-App-Id": self.connector_id,
            "Hull-Access-Token": self.secret,
            "Hull-Organization": self.organization,
        }

    def token(self, **kwargs: Any) -> str:
        return entity_token(self.secret, self.connector_id, **kwargs)

    def _request(self, method: str, url: str, *, params: Mapping[str, Any] | None = None, json: Any = None) -> Any:
        """Send, retrying timeouts and 5xx up to MAX_RETRIES times; map failures to typed errors."""
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                response = self.session.request(
                    method, url, params=params, json=json, headers=self.headers, timeout=self.timeout
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                if attempt < MAX_RETRIES:
                    attempt += 1
                    time.sleep(RETRY_BACKOFF * 2 ** (attempt - 1))
                    continue
                logger.warning("hull.api.unavailable", extra={"method": method, "url": url, "error": type(exc).__name__})
                raise HullUnavailable(f"Hull is unreachable: {type(exc).__name__}", url=url) from exc
            elapsed = round((time.monotonic() - started) * 1000)
            status = response.status_code
            logger.debug("hull.api.call", extra={"method": method, "url": url, "status": status, "ms": elapsed})
            if status >= 500 and attempt < MAX_RETRIES:
                attempt += 1
                time.sleep(RETRY_BACKOFF * 2 ** (attempt - 1))
                continue
            if status < 400:
                return _body(response)
            body = _body(response)
            logger.warning("hull.api.error", extra={"method": method, "url": url, "status": status})
            message = f"Hull answered {status} to {method} {url}"
            if status >= 500:
                raise HullServerError(message, status=status, url=url, body=body)
            if status in (401, 403) or (status == 404 and url.endswith("/app")):
                raise HullUnauthorized(message, status=status, url=url, body=body)
            if status == 404:
                raise HullNotFound(message, status=status, url=url, body=body)
            raise HullApiError(message, status=status, url=url, body=body)

    # -- platform REST (docs/hull-protocol.md#rest-api) ---------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._request("GET", f"{self.api_base}/{path.lstrip('/')}", params=params)

    def put(self, path: str, body: Any) -> Any:
        return self._request("PUT", f"{self.api_base}/{path.lstrip('/')}", json=body)

    def post(self, path: str, body: Any) -> Any:
        return self._request("POST", f"{self.api_base}/{path.lstrip('/')}", json=body)

    def get_app(self) -> dict[str, Any]:
        """The connector object as Hull knows it (settings, manifest, status)."""
        return self.get("app")

    def put_status(self, status: str, messages: list[str]) -> Any:
        """Report the connector status shown in Hull's dashboard."""
        return self.put(f"{self.connector_id}/status", {"status": status, "messages": messages})

    def users_segments(self) -> list[dict[str, Any]]:
        return list(self.get("users_segments", {"shipId": self.connector_id}) or [])

    def accounts_segments(self) -> list[dict[str, Any]]:
        return list(self.get("accounts_segments", {"shipId": self.connector_id}) or [])

    # -- firehose (docs/hull-protocol.md#firehose) ---------------------------------------------------

    def post_firehose(self, records: list[dict[str, Any]]) -> Any:
        """One POST with a batch of records (FirehoseBatch builds and groups them)."""
        now = utc_now_iso()
        return self._request("POST", self.firehose_url, json={"batch": records, "timestamp": now, "sentAt": now})


def _body(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


class HullExportTooLarge(HullApiError):
    """The export file is bigger than the connector accepts."""


class HullExportRefused(HullApiError):
    """The export download stopped: a URL or address not allowed, a redirect off the allowed hosts,
    too many redirects, a truncated body, a line too long, the deadline. The message says which."""


EXPORT_CHUNK_BYTES = 64 * 1024  # read size: memory per read, whatever the file size
EXPORT_MAX_REDIRECTS = 3
EXPORT_DEADLINE_SECONDS = 900.0
EXPORT_MAX_LINE_BYTES = 4 * 1024 * 1024


def _export_url(url: str, allowed_hosts: Iterable[str] | None, trusted_prefix: str) -> tuple[str, bool]:
    """(URL to fetch, trusted): the demo's own sandbox files (trusted_prefix, set by the deployment)
    as they are; anything else https, no userinfo or port, a DNS name (under allowed_hosts if given)."""
    if trusted_prefix and url.startswith(trusted_prefix) and "@" not in url and "\\" not in url:
        return url, True
    try:
        checked = check_url(url, allowed_suffixes=list(allowed_hosts) if allowed_hosts else None, allow_query=True, allow_escaped_path=True)
    except UnsafeUrl as refusal:
        raise HullExportRefused(f"Export file URL refused: {refusal}", url=url.split("?", 1)[0][:200]) from refusal
    return checked.url, False


def stream_export_lines(
    url: str,
    *,
    max_bytes: int,
    timeout: float = 60.0,
    session: requests.Session | None = None,
    allowed_hosts: Iterable[str] | None = None,
    deadline_seconds: float = EXPORT_DEADLINE_SECONDS,
    max_line_bytes: int = EXPORT_MAX_LINE_BYTES,
    trusted_prefix: str = "",
    clock: Any = time.monotonic,
) -> Iterator[bytes]:
    """The lines of an export file (newline-delimited JSON), read in bounded chunks.

    The URL is a pre-signed file link, so no Hull credentials are sent with it. Where it may point
    (docs/security.md "Export downloads"): https, a public address checked after resolution and
    connected to as checked (sync.net.PinnedPublicAdapter), `allowed_hosts` narrowing the host
    names when given; redirects are followed by hand, each hop checked the same way. Stops with
    HullExportTooLarge past `max_bytes`, HullExportRefused for every other refusal (deadline,
    line longer than `max_line_bytes`, truncated body, redirects); transport errors and 5xx
    become the usual typed errors.
    """
    deadline = clock() + deadline_seconds
    target, trusted = _export_url(url, allowed_hosts, trusted_prefix)
    safe_name = target.split("?", 1)[0][:200]  # the query of a pre-signed URL is its credential
    response: requests.Response | None = None
    for _hop in range(EXPORT_MAX_REDIRECTS + 1):
        http = session or (requests.Session() if trusted else pinned_public_session())
        remaining = deadline - clock()
        if remaining <= 0:
            raise HullExportRefused("Export download deadline passed before the file answered", url=safe_name)
        try:
            response = http.get(target, stream=True, timeout=min(timeout, remaining), allow_redirects=False)
        except UnsafeUrl as refusal:
            raise HullExportRefused(f"Export file refused: {refusal}", url=safe_name) from refusal
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise HullUnavailable(f"Export file unreachable: {type(exc).__name__}", url=safe_name) from exc
        except requests.RequestException as exc:
            raise HullExportRefused(f"Export file could not be fetched: {type(exc).__name__}", url=safe_name) from exc
        if not response.is_redirect:
            break
        location = response.headers.get("Location", "")
        response.close()
        next_url = requests.compat.urljoin(target, location)
        if trusted and next_url.startswith(trusted_prefix):
            target = next_url
            continue
        target, trusted = _export_url(next_url, allowed_hosts, "")
        safe_name = target.split("?", 1)[0][:200]
    else:
        raise HullExportRefused(f"Export file redirected more than {EXPORT_MAX_REDIRECTS} times", url=safe_name)
    assert response is not None
    with response:
        if response.status_code >= 500:
            raise HullServerError(f"Export file answered {response.status_code}", status=response.status_code, url=safe_name)
        if response.status_code >= 400:
            raise HullApiError(f"Export file answered {response.status_code}", status=response.status_code, url=safe_name)
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise HullExportTooLarge(f"Export file is {declared} bytes (limit {max_bytes})", url=safe_name)
        read = 0
        pending = b""
        try:
            for chunk in response.iter_content(chunk_size=EXPORT_CHUNK_BYTES):
                read += len(chunk)
                if read > max_bytes:
                    raise HullExportTooLarge(f"Export file exceeds {max_bytes} bytes", url=safe_name)
                if clock() > deadline:
                    raise HullExportRefused(f"Export download took longer than {deadline_seconds:.0f} s", url=safe_name)
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if len(pending) > max_line_bytes or any(len(line) > max_line_bytes for line in lines):
                    raise HullExportRefused(f"Export file has a line longer than {max_line_bytes} bytes", url=safe_name)
                yield from lines
        except (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError) as exc:
            raise HullExportRefused(f"Export file was cut short: {type(exc).__name__}", url=safe_name) from exc
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise HullUnavailable(f"Export download interrupted: {type(exc).__name__}", url=safe_name) from exc
        except requests.RequestException as exc:
            raise HullExportRefused(f"Export file could not be read: {type(exc).__name__}", url=safe_name) from exc
        if declared and declared.isdigit() and read < int(declared) and not response.headers.get("Content-Encoding"):
            raise HullExportRefused(f"Export file was cut short: {read} of {declared} bytes", url=safe_name)
        if pending:
            yield pending


HULL_KEY_HOSTS = ("hullapp.io", "hullbeta.io")  # the default of settings.HULL_PUBLIC_KEY_HOSTS
_public_keys: dict[str, str] = {}  # url -> PEM; Hull's framework caches them per URL too


def public_key_url(url: str, allowed_hosts: Iterable[str]) -> str:
    """The key URL as the transport will fetch it, or UnsafeUrl: https, no port, no userinfo, no
    escapes, a plain DNS host under one of `allowed_hosts` (docs/security.md "Hull signatures")."""
    return check_url(url, allowed_suffixes=list(allowed_hosts)).url


def fetch_public_key(
    url: str, signature: str, *, allowed_hosts: Iterable[str] = HULL_KEY_HOSTS, timeout: float = 5.0, session: requests.Session | None = None
) -> str:
    """The PEM public key Hull signs notifications with (§2.2: POST the signature to the key URL).

    The URL is checked here again (UnsafeUrl) and the rebuilt URL is what is fetched; a redirect
    is never followed (a key host could send us anywhere), it is a refusal.
    """
    safe_url = public_key_url(url, allowed_hosts)
    cached = _public_keys.get(safe_url)
    if cached:
        return cached
    http = session or requests.Session()
    try:
        response = http.post(
            safe_url, data=signature, headers={"Content-Type": "text/plain"}, timeout=timeout, allow_redirects=False
        )
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise HullUnavailable(f"Public key unreachable: {type(exc).__name__}", url=safe_url) from exc
    if response.is_redirect or response.status_code >= 300:
        raise HullApiError("The key URL did not answer with a key", status=response.status_code, url=safe_url)
    text = response.text[:20000]
    if "-----BEGIN PUBLIC KEY-----" not in text:
        raise HullApiError("No public key at the signature's key URL", status=response.status_code, url=safe_url)
    _public_keys[safe_url] = text
    return text
