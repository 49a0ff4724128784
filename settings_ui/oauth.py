"""Connecting a connector to an Intercom workspace with OAuth (social-auth-app-django).

The flow is not a login: the pipeline stores the token, encrypted, on the connector whose id
was put in the session when staff clicked "Connect Intercom".
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from social_core.backends.oauth import BaseOAuth2

SESSION_CONNECTOR_KEY = "intercom_oauth_connector_id"


class IntercomOAuth2(BaseOAuth2):
    """Intercom's OAuth: authorize on app.intercom.com, token from /auth/eagle/token, workspace from /me."""

    name = "intercom"
    ACCESS_TOKEN_METHOD = "POST"
    REDIRECT_STATE = False
    STATE_PARAMETER = True
    EXTRA_DATA = [("token_type", "token_type")]

    def authorization_url(self) -> str:
        return f"{settings.INTERCOM_OAUTH_BASE}/oauth"

    def access_token_url(self) -> str:
        return f"{settings.INTERCOM_API_BASE}/auth/eagle/token"

    def get_user_id(self, details: dict[str, Any], response: dict[str, Any]) -> str:
        return str(response.get("app", {}).get("id_code") or response.get("id") or "")

    def get_user_details(self, response: dict[str, Any]) -> dict[str, Any]:
        app = response.get("app") or {}
        return {"username": app.get("id_code", ""), "email": response.get("email", ""), "fullname": app.get("name", "")}

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.get_json(
            f"{settings.INTERCOM_API_BASE}/me",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )


def store_token_on_connector(backend: Any, response: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
    """Pipeline step: save the token and workspace on the chosen connector, then go back to it."""
    from django.shortcuts import redirect

    from sync.models import Connector

    connector_id = backend.strategy.session_get(SESSION_CONNECTOR_KEY)
    connector = Connector.objects.filter(pk=connector_id).first()
    if connector is None:
        return redirect("/admin/")
    app = response.get("app") or {}
    connector.intercom_access_token = response["access_token"]
    connector.intercom_workspace_id = app.get("id_code", "")
    connector.intercom_workspace_name = app.get("name", "")
    connector.save(update_fields=["intercom_access_token", "intercom_workspace_id", "intercom_workspace_name", "updated_at"])
    return redirect(f"/admin/sync/connector/{connector.pk}/change/")
