"""Talking to a running PhantomEx over its REST API: one place for HTTP, errors and look-ups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import typer

from phantomex.cli.output import err_console

if TYPE_CHECKING:
    import httpx

#: seconds a request may take in all, and to connect (httpx is imported only when a request is made)
TIMEOUT = (30.0, 5.0)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` on one line to stderr and exit with ``code``."""
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def not_running_message(url: str) -> str:
    return f"PhantomEx is not running at {url} — start it with `phantomex start`"


class ApiError(Exception):
    """A 4xx/5xx answer, with the API's error body unpacked."""

    def __init__(self, status: int, code: str, message: str, field: str | None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def __str__(self) -> str:
        if self.field and not self.message.startswith(f"{self.field}:"):
            return f"error: {self.field}: {self.message}"
        return f"error: {self.message}"


class NotRunning(Exception):
    """Nothing answers at the server's address."""


class Api:
    """A thin client: every call returns the decoded JSON or raises :class:`ApiError` /
    :class:`NotRunning`; :meth:`call` turns those into a message and exit code 1."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> Any:
        import httpx  # a command that never talks to the server skips this import

        if timeout is None:
            timeout = httpx.Timeout(TIMEOUT[0], connect=TIMEOUT[1])
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            with httpx.Client(base_url=self.url, timeout=timeout, headers=self.headers) as client:
                resp = client.request(method, path, json=json, params=clean)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise NotRunning(self.url) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ApiError(0, "bad_url", f"not a usable server address: {self.url}", None) from exc
        except httpx.HTTPError as exc:
            raise ApiError(0, "transport", f"talking to {self.url} failed: {exc}", None) from exc
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.is_success:
            return body
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            raise ApiError(
                resp.status_code,
                str(error.get("code") or "error"),
                str(error.get("message") or resp.reason_phrase),
                error.get("field"),
            )
        text = resp.text.strip().splitlines()[0][:200] if resp.text.strip() else ""
        raise ApiError(
            resp.status_code, "http_error", f"HTTP {resp.status_code} {text}".strip(), None
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`request`, exiting with a one-line message on any failure."""
        try:
            return self.request(method, path, **kwargs)
        except NotRunning:
            fail(not_running_message(self.url))
        except ApiError as exc:
            fail(str(exc))

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, json=body)

    # -- look-ups ---------------------------------------------------------------------------------
    def agents(self) -> list[dict[str, Any]]:
        agents: list[dict[str, Any]] = self.get("/api/agents")
        return agents

    def resolve_agent(self, ref: str) -> dict[str, Any]:
        """The agent whose id or (case-insensitive) name is ``ref`` (or unique id prefix)."""
        return resolve_agent(self.agents(), ref)

    def resolve_decision(self, ref: str) -> str:
        """A full decision id from ``ref`` (full id, or a unique prefix of a pending one)."""
        if len(ref) >= 32:
            return ref
        pending = self.get("/api/decisions", status="pending", limit=1000)
        hits = [d["id"] for d in pending if d["id"].startswith(ref.lower())]
        if len(hits) == 1:
            return str(hits[0])
        if len(hits) > 1:
            fail(f"decision id {ref!r} is ambiguous: matches {len(hits)} pending decisions")
        fail(f"error: no pending decision whose id starts with {ref!r} (see `phantomex pending`)")


def resolve_agent(agents: list[dict[str, Any]], ref: str) -> dict[str, Any]:
    needle = ref.strip()
    for agent in agents:
        if agent["id"] == needle:
            return agent
    by_name = [a for a in agents if str(a["name"]).casefold() == needle.casefold()]
    if len(by_name) == 1:
        return by_name[0]
    by_prefix = [a for a in agents if needle and a["id"].startswith(needle.lower())]
    if len(by_prefix) == 1:
        return by_prefix[0]
    if len(by_prefix) > 1:
        fail(f"agent id prefix {ref!r} is ambiguous: matches {len(by_prefix)} agents")
    names = ", ".join(repr(a["name"]) for a in agents) or "none"
    fail(f"no agent with id or name {ref!r} (agents: {names})")
