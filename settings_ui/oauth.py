"""Connecting a connector to an Intercom workspace with OAuth (social-auth-app-django).

The flow is not a login: staff stay who they are. "Connect Intercom" puts the connector id in the
session, social-auth sends staff to Intercom's authorize page, and the pipeline stores the token,
encrypted, on that connector, then goes back to its settings page (docs/intercom-api.md#oauth-and-workspace-identity).
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from social_core.backends.oauth import BaseOAuth2
from social_core.exceptions import AuthException
from social_django.strategy import DjangoStrategy

from sync.intercom.regions import (
    REGIONS,
    intercom_api_base,
    intercom_authorize_url,
    intercom_token_url,
    region_from_me,
)
from sync.models import Connector

logger = logging.getLogger(__name__)

SESSION_CONNECTOR_KEY = "intercom_oauth_connector_id"


def connector_admin_url(connector_id: Any) -> str:
    if connector_id:
        return reverse("admin:sync_connector_change", args=[connector_id])
    return reverse("admin:sync_connector_changelist")


class IntercomOAuth2(BaseOAuth2):
    """Intercom's OAuth: authorize on app.intercom.com, token from /auth/eagle/token, workspace from /me."""

    name = "intercom"
    strategy: DjangoStrategy  # social_django's views run this backend, with the request at hand
    ACCESS_TOKEN_METHOD = "POST"
    REDIRECT_STATE = False
    STATE_PARAMETER = True
    EXTRA_DATA = [("token_type", "token_type")]

    # URLs are read at call time from the connector being connected, but only its region (a
    # choice) decides them: the token exchange, which carries the deployment-wide client secret,
    # goes to Intercom's own host for that region (sync/intercom/regions.py), or to the deployment's
    # override / the demo's sandbox, never to a host someone typed in the admin.
    def _connector(self) -> Connector | None:
        connector_id = self.strategy.session_get(SESSION_CONNECTOR_KEY)
        if not connector_id:
            return None
        return Connector.objects.filter(pk=connector_id).only("intercom_region", "intercom_api_base").first()

    def _api_base(self) -> str:
        return intercom_api_base(self._connector())

    def authorization_url(self) -> str:
        return intercom_authorize_url(self._connector())

    def access_token_url(self) -> str:
        return intercom_token_url(self._connector())

    def request_access_token(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        response = super().request_access_token(*args, **kwargs)
        if not isinstance(response, dict):
            raise AuthException(self, "Intercom's token answer was not a JSON object.")
        # Intercom has been seen answering with `token` alone; social-auth expects `access_token`.
        if "access_token" not in response and response.get("token"):
            response["access_token"] = response["token"]
        if not isinstance(response.get("access_token"), str) or not response.get("access_token"):
            # Without this the pipeline dies on a KeyError: a 500 instead of a message.
            raise AuthException(self, "Intercom's token answer had no access token.")
        return response

    def auth_complete(self, *args: Any, **kwargs: Any) -> Any:
        """A refused or broken authorization goes back to the connector page with a message, not a 500."""
        try:
            return super().auth_complete(*args, **kwargs)
        except AuthException as error:
            logger.warning("admin.oauth.failed", extra={"error": str(error)})
            request = self.strategy.request
            messages.error(request, f"Intercom did not connect: {error}")
            return redirect(connector_admin_url(self.strategy.session_get(SESSION_CONNECTOR_KEY)))

    def get_user_id(self, details: dict[str, Any], response: dict[str, Any]) -> str:
        return str((response.get("app") or {}).get("id_code") or response.get("id") or "")

    def get_user_details(self, response: dict[str, Any]) -> dict[str, Any]:
        app = response.get("app") or {}
        return {"username": app.get("id_code", ""), "email": response.get("email", ""), "fullname": app.get("name", "")}

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        # /me names the workspace (app.id_code) the token belongs to.
        return self.get_json(
            f"{self._api_base()}/me",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )


def store_token_on_connector(backend: Any, response: dict[str, Any], *args: Any, **kwargs: Any) -> HttpResponse:
    """Pipeline step: save the token and workspace on the chosen connector, then go back to it.

    Returning a response ends the pipeline before any login or user creation happens.
    """
    request = backend.strategy.request
    connector_id = backend.strategy.session_get(SESSION_CONNECTOR_KEY)
    connector = Connector.objects.filter(pk=connector_id).first() if connector_id else None
    if connector is None or not request.user.has_perm("sync.change_connector"):
        messages.error(request, "Start the Intercom connection from a connector's settings page.")
        return redirect(connector_admin_url(None))
    app = response.get("app") or {}
    access_token = response.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        messages.error(request, "Intercom did not connect: its answer had no access token. Try connecting again.")
        return redirect(connector_admin_url(connector.pk))
    # /me names the workspace's region; Intercom's word wins over the choice (both are in the fixed table).
    region = region_from_me(response)
    if region and region != connector.intercom_region:
        messages.warning(request, f"Intercom says this workspace is hosted in {REGIONS[region].label}: the connector's region now says so too.")
        connector.intercom_region = region
        connector.save(update_fields=["intercom_region", "updated_at"])
    intercom_connection_store(
        connector=connector,
        access_token=access_token,
        workspace_id=app.get("id_code", ""),
        workspace_name=app.get("name", ""),
    )
    backend.strategy.session_pop(SESSION_CONNECTOR_KEY)
    from settings_ui.history import history_record

    history_record(request, connector, f"Connected to the Intercom workspace “{connector.intercom_workspace_name or connector.intercom_workspace_id}”.")
    messages.success(request, f"Connected to the Intercom workspace “{connector.intercom_workspace_name or connector.intercom_workspace_id}”.")
    return redirect(connector_admin_url(connector.pk))


def intercom_connection_store(*, connector: Connector, access_token: str, workspace_id: str, workspace_name: str) -> None:
    connector.intercom_access_token = access_token
    connector.intercom_workspace_id = workspace_id
    connector.intercom_workspace_name = workspace_name
    connector.save(update_fields=["intercom_access_token", "intercom_workspace_id", "intercom_workspace_name", "updated_at"])
    logger.info("admin.oauth.connected", extra={"connector": connector.pk, "workspace": workspace_id})
    # A new token lifts a hold put by a refused one, and what was held runs at once.
    from sync.work import connector_token_accepted

    connector_token_accepted(connector=connector)


def intercom_disconnect(*, connector: Connector) -> None:
    """Forget the token: the connector stops talking to Intercom until it is connected again.

    The workspace id is kept so logs and cursors still say which workspace they belong to.
    Intercom tokens do not expire; revoking one is done by uninstalling the app in Intercom.
    """
    connector.intercom_access_token = ""
    connector.webhook_id = ""
    connector.save(update_fields=["intercom_access_token", "webhook_id", "updated_at"])
    logger.info("admin.oauth.disconnected", extra={"connector": connector.pk})
