"""Authentication at the edge: an ASGI gate in front of the API and WebSocket, and the login API.

When auth is on, every path but ``/health``, the dashboard's page and assets, the API docs and
``/api/auth/*`` needs either ``Authorization: Bearer <token>`` or the session cookie set by
``POST /api/auth/login``. A cookie-authenticated mutation (POST/PUT/PATCH/DELETE) must also send
the session's CSRF token in ``X-CSRF-Token`` (the page reads it from the ``phantomex_csrf``
cookie); a WebSocket with a cookie must come from the server's own origin.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from datetime import datetime
from http.cookies import SimpleCookie
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from phantomex.api.errors import error_body
from phantomex.api.schemas.auth import SessionState
from phantomex.auth.policy import is_loopback
from phantomex.auth.ratelimit import FailureLimiter
from phantomex.auth.service import AuthService, csrf_token
from phantomex.config import Settings

SESSION_COOKIE = "phantomex_session"
CSRF_COOKIE = "phantomex_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
DOCS_ASSETS = "/docs-assets"  # Swagger UI's and ReDoc's scripts, served by this server
CONFIGURED_TTL = 1.0  # seconds a loopback server trusts its last "no credentials yet" lookup
OPEN_PATHS = {
    "/health",
    "/",
    "/index.html",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/openapi.json",
    "/api/auth/login",
    "/api/auth/logout",
    "/api/auth/session",
}
router = APIRouter(tags=["auth"])


@dataclass
class Identity:
    method: str | None  # "token" | "session" | None
    session_id: str | None = None


@dataclass
class Gate:
    """The server's credentials, its policy and the login rate limit."""

    service: AuthService
    settings: Settings
    limiter: FailureLimiter = field(default_factory=FailureLimiter)
    _loopback: bool = field(init=False)
    _configured: bool = False
    _checked_at: float = float("-inf")  # time.monotonic() of the last lookup

    def __post_init__(self) -> None:
        self._loopback = is_loopback(self.settings.host)

    def enabled(self) -> bool:
        known = self.known()
        if known is not None:
            return known
        self._configured = self.service.configured()  # a database read
        self._checked_at = time.monotonic()
        return self._configured

    def known(self) -> bool | None:
        """Whether auth is on, when that is known without a database read, else None. On
        loopback with auth left to the credentials, "off" is trusted for
        :data:`CONFIGURED_TTL` (a token the CLI creates turns auth on within it); "on" is
        always looked up again, so revoking the last credential takes effect at once."""
        if self.settings.auth is not None:
            return self.settings.auth
        if not self._loopback:
            return True
        fresh = time.monotonic() - self._checked_at < CONFIGURED_TTL
        return False if fresh and not self._configured else None

    def identify(self, headers: Headers) -> Identity:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token and self.service.token_valid(token.strip()):
            return Identity("token")
        session_id = _cookie(headers, SESSION_COOKIE)
        if session_id and self.service.session_valid(session_id):
            return Identity("session", session_id)
        return Identity(None)


def gate_of(app: Any) -> Gate:
    """The app's gate, made on first use (the store exists once the lifespan has started)."""
    state = app.state
    gate: Gate | None = getattr(state, "auth_gate", None)
    if gate is None:
        settings: Settings = state.settings
        gate = Gate(AuthService(state.store, settings.auth_password_hash), settings)
        state.auth_gate = gate
    return gate


def _cookie(headers: Headers, name: str) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header is the same as none
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


def _open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(("/assets/", f"{DOCS_ASSETS}/"))


def _refusal(scope: Scope, headers: Headers, identity: Identity) -> tuple[int, str, str] | None:
    """(status, code, message) when the request may not pass, else None."""
    if identity.method is None:
        return (
            401,
            "unauthorized",
            "authentication required: log in, or send 'Authorization: Bearer <token>' "
            "(create one with `phantomex auth token create NAME`)",
        )
    if identity.method != "session" or identity.session_id is None:
        return None
    if scope["type"] == "websocket":
        origin = headers.get("origin")
        if origin and origin.split("://", 1)[-1] != headers.get("host"):
            return 403, "forbidden_origin", "WebSocket from another origin"
        return None
    if scope["method"] in SAFE_METHODS:
        return None
    sent = headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), csrf_token(identity.session_id).encode()):
        return 403, "csrf", f"missing or wrong {CSRF_HEADER} header (log in again)"
    return None


class AuthMiddleware:
    """Refuses unauthenticated HTTP requests and WebSocket handshakes when auth is on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or _open(scope["path"]):
            await self.app(scope, receive, send)
            return
        gate = gate_of(scope["app"])
        if gate.known() is False:  # no thread and no database read per request
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)

        def decide() -> tuple[int, str, str] | None:
            if not gate.enabled():
                return None
            return _refusal(scope, headers, gate.identify(headers))

        refusal = await to_thread.run_sync(decide)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, code, message = refusal
        if scope["type"] == "websocket":
            await receive()  # the handshake's connect message
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        response = JSONResponse(
            status_code=status,
            content=error_body(code, message),
            headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
        )
        await response(scope, receive, send)


# -- the login API ---------------------------------------------------------------------------------
class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=1, max_length=1024)


LOGIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Wrong password."},
    409: {"description": "No dashboard password is set."},
    422: {"description": "Invalid body."},
    429: {"description": "Too many failed logins from this address; see Retry-After."},
}


def _secure(request: Request, settings: Settings) -> bool:
    """Secure cookies over https (uvicorn applies X-Forwarded-Proto from trusted proxies)."""
    if settings.cookie_secure is not None:
        return settings.cookie_secure
    return request.url.scheme == "https"


@router.get("/api/auth/session", response_model=SessionState)
async def session_state(request: Request) -> SessionState:
    """Whether auth is on and whether this request is authenticated (always open)."""
    gate = gate_of(request.app)

    def read() -> SessionState:
        identity = gate.identify(request.headers)
        return SessionState(
            auth_enabled=gate.enabled(),
            authenticated=identity.method is not None,
            method=identity.method,
            password_login=bool(gate.service.password_hash()),
            csrf_token=csrf_token(identity.session_id) if identity.session_id else None,
        )

    return await to_thread.run_sync(read)


@router.post("/api/auth/login", response_model=SessionState, responses=LOGIN_ERRORS)
async def login(body: LoginBody, request: Request, response: Response) -> Any:
    """Exchange the dashboard password for a session cookie (5 failures a minute per address)."""
    gate = gate_of(request.app)
    client = request.client.host if request.client else "unknown"
    wait = gate.limiter.retry_after(client)
    if wait:
        return JSONResponse(
            status_code=429,
            content=error_body("rate_limited", f"too many failed logins; retry in {wait} s"),
            headers={"Retry-After": str(wait)},
        )
    if not await to_thread.run_sync(gate.service.password_hash):
        return JSONResponse(
            status_code=409,
            content=error_body(
                "no_password", "no dashboard password is set: run `phantomex auth set-password`"
            ),
        )
    if not await to_thread.run_sync(gate.service.verify_password, body.password):
        gate.limiter.failed(client)
        return JSONResponse(
            status_code=401,
            content=error_body("invalid_credentials", "wrong password", "password"),
        )
    gate.limiter.succeeded(client)
    session_id, expires = await to_thread.run_sync(gate.service.new_session)
    secure = _secure(request, gate.settings)
    csrf = csrf_token(session_id)
    age = int((expires - datetime.now(expires.tzinfo)).total_seconds())
    for name, value, http_only in ((SESSION_COOKIE, session_id, True), (CSRF_COOKIE, csrf, False)):
        response.set_cookie(
            name, value, max_age=age, httponly=http_only, samesite="strict", secure=secure
        )
    return SessionState(
        auth_enabled=gate.enabled(),
        authenticated=True,
        method="session",
        password_login=True,
        expires_at=expires,
        csrf_token=csrf,
    )


@router.post("/api/auth/logout", response_model=SessionState)
async def logout(request: Request, response: Response) -> SessionState:
    """End this browser's session (if any) and clear its cookies."""
    gate = gate_of(request.app)
    session_id = _cookie(request.headers, SESSION_COOKIE)
    if session_id:
        await to_thread.run_sync(gate.service.end_session, session_id)
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, samesite="strict")
    return SessionState(
        auth_enabled=gate.enabled(),
        authenticated=False,
        password_login=bool(gate.service.password_hash()),
    )


def install(app: FastAPI) -> None:
    """Add the gate and the login API to ``app``."""
    app.add_middleware(AuthMiddleware)
    app.include_router(router)
