"""Where a connector's Intercom calls go: a fixed table of Intercom's regional hosts.

Secrets follow the host (the access token on every call, the deployment's OAuth client secret on
the token exchange), so no editable field names a host (docs/security.md "Where secrets go").
A connector chooses a region; only the deployment may point elsewhere: the
INTERCOM_API_BASE_OVERRIDE setting, or, while SANDBOX_ENABLED is on, the sandbox base the demo
set-up wrote on the connector (not editable in the admin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

SANDBOX_API_SUFFIX = "/sandbox/intercom"


@dataclass(frozen=True)
class Region:
    code: str
    label: str
    api: str  # REST API base, also the OAuth token exchange host
    app: str  # the web app: where admins of this region sign in and authorize apps

    @property
    def authorize_url(self) -> str:
        return f"{self.app}/oauth"

    @property
    def token_url(self) -> str:
        return f"{self.api}/auth/eagle/token"


# developers.intercom.com/building-apps/docs/rest-apis (regional hosting); EU and AU workspaces
# sign in, and so authorize apps, on their own app host.
REGIONS: dict[str, Region] = {
    "us": Region("us", "United States", "https://api.intercom.io", "https://app.intercom.com"),
    "eu": Region("eu", "Europe", "https://api.eu.intercom.io", "https://app.eu.intercom.com"),
    "au": Region("au", "Australia", "https://api.au.intercom.io", "https://app.au.intercom.com"),
}
DEFAULT_REGION = "us"
REGION_CHOICES = [(region.code, region.label) for region in REGIONS.values()]

# `/me` answers app.region as "US" / "EU" / "AU", and has been seen saying "Europe" (peers.md §3.15).
_ME_REGIONS = {"us": "us", "united states": "us", "eu": "eu", "europe": "eu", "au": "au", "australia": "au"}


def region_of(connector: Any) -> Region:
    return REGIONS.get(getattr(connector, "intercom_region", "") or DEFAULT_REGION, REGIONS[DEFAULT_REGION])


def sandbox_api_base(connector: Any) -> str:
    """The demo's sandbox base on the connector, honoured only while the sandbox is on."""
    base = (getattr(connector, "intercom_api_base", "") or "").rstrip("/")
    if settings.SANDBOX_ENABLED and base.endswith(SANDBOX_API_SUFFIX):
        return base
    return ""


def intercom_api_base(connector: Any | None) -> str:
    """The REST base every call of this connector uses (the access token goes there)."""
    override = (getattr(settings, "INTERCOM_API_BASE_OVERRIDE", "") or "").rstrip("/")
    if override:
        return override
    if connector is not None and sandbox_api_base(connector):
        return sandbox_api_base(connector)
    return region_of(connector).api


def intercom_token_url(connector: Any | None) -> str:
    """Where the OAuth code and the deployment's INTERCOM_CLIENT_SECRET are posted: Intercom's own host."""
    return f"{intercom_api_base(connector)}/auth/eagle/token"


def intercom_authorize_url(connector: Any | None) -> str:
    """The consent page staff are sent to (no secret goes there, but it picks the workspace's region)."""
    override = (getattr(settings, "INTERCOM_OAUTH_BASE", "") or "").rstrip("/")
    if connector is not None and sandbox_api_base(connector):
        return sandbox_api_base(connector)[: -len(SANDBOX_API_SUFFIX)] + "/sandbox/intercom-oauth/oauth"
    if override:
        return f"{override}/oauth"
    return region_of(connector).authorize_url


def region_from_me(me: Any) -> str:
    """The region code `/me` names (app.region), or "" when it names none we know."""
    app = me.get("app") if isinstance(me, dict) else None
    value = str((app or {}).get("region") or "").strip().lower()
    return _ME_REGIONS.get(value, "")
