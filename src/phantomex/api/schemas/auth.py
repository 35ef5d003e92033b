"""``/api/auth/*``: whether auth is on and this request's session."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from phantomex.api.schemas.wire import RESPONSE


class SessionState(BaseModel):
    model_config = RESPONSE

    auth_enabled: bool = Field(description="Whether the API needs a login or a token.")
    authenticated: bool = Field(description="Whether this request carries valid credentials.")
    method: str | None = Field(None, description="token or session.")
    password_login: bool = Field(description="Whether a dashboard password is set.")
    expires_at: datetime | None = None
    csrf_token: str | None = Field(None, description="Send it as X-CSRF-Token on mutations.")
