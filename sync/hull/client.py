"""The Hull client: one class, one request method, typed errors (docs/hull-protocol.md#credentials, #firehose).

The connector talks to Hull in two ways: the platform REST API (`https://<org>/api/v1/...`, its own
settings, status and segments) and the firehose (`https://firehose.<domain>`, every write to users,
accounts and events). Both authenticate with the connector id and secret in headers (docs/hull-protocol.md#rest-api); each
firehose record also carries an HS256 JWT naming its entity (docs/hull-protocol.md#entity-tokens), built here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import jwt
import requests

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


def _base_url(organization: str) -> str:
    # A full URL is accepted so the local demo can point at the sandbox (http://localhost/...).
    if organization.startswith(("http://", "https://")):
        return organization.rstrip("/")
    return f"https://{organization}"


def default_firehose_url(organization: str) -> str:
    """`https://firehose.<domain>` (docs/hull-protocol.md#credentials); the org host is split at its first dot."""
    if organization.startswith(("http://", "https://")):
        return _base_url(organization) + "/api/v1/firehose"
    _namespace, _, domain = organization.partition(".")
    return f"https://firehose.{domain or organization}"


class HullClient:
    """Credentials of one connector and the one `_request` every Hull call goes through."""

    def __init__(
        self,
        connector_id: str,
        secret: str,
        organization: str,
        *,
        firehose_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.connector_id = connector_id
        self.secret = secret
        self.organization = organization
        self.api_base = _base_url(organization) + "/api/v1"
        self.firehose_url = firehose_url or default_firehose_url(organization)
        self.timeout = timeout
        self.session = session or requests.Session()

    @classmethod
    def for_connector(cls, connector: Any, **kwargs: Any) -> HullClient:
        return cls(
            connector.hull_id,
            connector.hull_secret,
            connector.hull_organization,
            firehose_url=connector.hull_firehose_url or None,
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


EXPORT_CHUNK_BYTES = 64 * 1024  # read size: memory per read, whatever the file size


def stream_export_lines(
    url: str,
    *,
    max_bytes: int,
    timeout: float = 60.0,
    session: requests.Session | None = None,
) -> Iterator[bytes]:
    """The lines of an export file (newline-delimited JSON), read in bounded chunks.

    The URL is a pre-signed file link, so no Hull credentials are sent with it. Stops with
    HullExportTooLarge past `max_bytes`; transport errors and 5xx become the usual typed errors.
    """
    http = session or requests.Session()
    try:
        response = http.get(url, stream=True, timeout=timeout)
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise HullUnavailable(f"Export file unreachable: {type(exc).__name__}", url=url) from exc
    with response:
        if response.status_code >= 500:
            raise HullServerError(f"Export file answered {response.status_code}", status=response.status_code, url=url)
        if response.status_code >= 400:
            raise HullApiError(f"Export file answered {response.status_code}", status=response.status_code, url=url)
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise HullExportTooLarge(f"Export file is {declared} bytes (limit {max_bytes})", url=url)
        read = 0
        pending = b""
        try:
            for chunk in response.iter_content(chunk_size=EXPORT_CHUNK_BYTES):
                read += len(chunk)
                if read > max_bytes:
                    raise HullExportTooLarge(f"Export file exceeds {max_bytes} bytes", url=url)
                pending += chunk
                *lines, pending = pending.split(b"\n")
                yield from lines
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise HullUnavailable(f"Export download interrupted: {type(exc).__name__}", url=url) from exc
        if pending:
            yield pending


_public_keys: dict[str, str] = {}  # url -> PEM; Hull's framework caches them per URL too


def fetch_public_key(url: str, signature: str, *, timeout: float = 5.0, session: requests.Session | None = None) -> str:
    """The PEM public key Hull signs notifications with (docs/hull-protocol.md#notification-signatures: POST the signature to the key URL).

    The caller checks the URL against the allow-list first; this only fetches and caches.
    """
    cached = _public_keys.get(url)
    if cached:
        return cached
    http = session or requests.Session()
    try:
        response = http.post(url, data=signature, headers={"Content-Type": "text/plain"}, timeout=timeout)
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise HullUnavailable(f"Public key unreachable: {type(exc).__name__}", url=url) from exc
    text = response.text if response.status_code < 400 else ""
    if "-----BEGIN PUBLIC KEY-----" not in text:
        raise HullApiError("No public key at the signature's key URL", status=response.status_code, url=url)
    _public_keys[url] = text
    return text
