"""``phantomex servers add | list | remove | status``: the server profiles, and every server's
health, clock, agents, equity and P&L side by side.

``status`` asks every server at once (one HTTP client, concurrent requests) and gives each a
deadline of ``--timeout`` seconds in all, so a slow or unreachable server costs at most that
long and never delays the others."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from phantomex.cli.client import fail
from phantomex.cli.fittable import FitTable, key, text
from phantomex.cli.output import console, print_json, say, signed_money, signed_pct, t
from phantomex.cli.profiles import Profile, ProfileError, Profiles
from phantomex.formatting import money, to_decimal, when

if TYPE_CHECKING:
    import httpx

DEFAULT_TIMEOUT = 3.0

servers_app = typer.Typer(help="Named server profiles (URL and token).", no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="The profile's name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _profiles() -> Profiles:
    return Profiles()


@servers_app.command("add")
def add(
    name: NameArg,
    url: Annotated[str, typer.Option("--url", help="The server's address, http(s)://HOST:PORT.")],
    token_stdin: Annotated[
        bool, typer.Option("--token-stdin", help="Read the server's API token from stdin.")
    ] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite a profile.")] = False,
) -> None:
    """Add a server profile; its token (from stdin) is stored encrypted."""
    token = sys.stdin.readline().strip() if token_stdin else None
    if token_stdin and not token:
        fail("error: --token-stdin: no token on standard input")
    try:
        profile = _profiles().add(name, url, token, replace=replace)
    except ProfileError as exc:
        fail(f"error: {exc}")
    with_token = "with a token (stored encrypted)" if profile.token else "without a token"
    say(f"server profile {profile.name}: {profile.url}, {with_token}")


@servers_app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """The server profiles (tokens are never shown)."""
    try:
        profiles = _profiles().all()
    except ProfileError as exc:
        fail(f"error: {exc}")
    if as_json:
        print_json([{"name": p.name, "url": p.url, "token": p.token is not None} for p in profiles])
        return
    if not profiles:
        say("no server profiles: add one with `phantomex servers add NAME --url URL`")
        return
    table = FitTable(key("Name"), key("URL"), key("Token"), title="Servers")
    for p in profiles:
        table.add_row(t(p.name), t(p.url), t("yes" if p.token else "no"))
    console.print(table)


@servers_app.command("remove")
def remove(name: NameArg) -> None:
    """Forget a server profile (the server itself is untouched)."""
    try:
        _profiles().remove(name)
    except ProfileError as exc:
        fail(f"error: {exc}")
    say(f"server profile {name} removed")


# -- status ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Probe:
    """What one server answered (``error`` set when it could not be asked)."""

    profile: Profile
    health: dict[str, Any] | None = None
    agents: list[dict[str, Any]] | None = None
    error: str | None = None

    def totals(self) -> dict[str, Decimal | None]:
        """The summed equity, P&L and P&L % (of the funding) of every agent."""
        if self.agents is None:
            return {"equity": None, "pnl": None, "pnl_pct": None}
        sums = {"equity": Decimal(0), "pnl": Decimal(0), "funding": Decimal(0)}
        for agent in self.agents:
            wallet = agent.get("wallet") or {}
            for field in sums:
                sums[field] += to_decimal(wallet.get(field)) or Decimal(0)
        pct = sums["pnl"] / sums["funding"] * 100 if sums["funding"] else None
        return {"equity": sums["equity"], "pnl": sums["pnl"], "pnl_pct": pct}

    def public(self) -> dict[str, Any]:
        totals = self.totals()
        return {
            "name": self.profile.name,
            "url": self.profile.url,
            "reachable": self.health is not None,
            "error": self.error,
            "health": self.health,
            "agents": None if self.agents is None else len(self.agents),
            **{k: None if v is None else format(v, "f") for k, v in totals.items()},
        }


def _reason(exc: BaseException, timeout: float) -> str:
    import httpx

    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}"


async def _get(client: httpx.AsyncClient, profile: Profile, path: str) -> Any:
    headers = {"Authorization": f"Bearer {profile.token}"} if profile.token else {}
    resp = await client.get(profile.url + path, headers=headers)
    resp.raise_for_status()
    return resp.json()


async def probe(client: httpx.AsyncClient, profile: Profile, timeout: float) -> Probe:
    """``/health`` and ``/api/agents`` of one server, both within ``timeout`` seconds."""
    health: Any
    agents: Any
    try:
        async with asyncio.timeout(timeout):
            health, agents = await asyncio.gather(
                _get(client, profile, "/health"),
                _get(client, profile, "/api/agents"),
                return_exceptions=True,
            )
    except TimeoutError as exc:
        return Probe(profile, error=_reason(exc, timeout))
    if isinstance(health, BaseException):
        return Probe(profile, error=_reason(health, timeout))
    if isinstance(agents, BaseException):
        return Probe(profile, health=health, error=f"agents: {_reason(agents, timeout)}")
    return Probe(profile, health=health, agents=agents)


async def probe_all(profiles: list[Profile], timeout: float) -> list[Probe]:
    """Every profile's :func:`probe`, concurrently, in the order given."""
    import httpx  # imported when a server is probed, not when the CLI starts

    async with httpx.AsyncClient(timeout=timeout) as client:
        return list(await asyncio.gather(*(probe(client, p, timeout) for p in profiles)))


def status_table(probes: list[Probe]) -> FitTable:
    table = FitTable(
        key("Server"),
        key("URL", style="dim"),
        key("Health"),
        text("Clock", min_width=10),
        key("Agents", right=True),
        key("Equity", right=True),
        key("P&L", right=True),
        key("P&L %", right=True),
        text("Problem", min_width=12, detail=True),
        title="Servers",
    )
    for p in probes:
        h = p.health
        if h is None:
            health = Text("UNREACHABLE", style="bold red")
        elif h.get("kill_switch"):
            health = Text("ok, KILL ON", style="red")
        else:
            health = Text(str(h.get("status", "ok")), style="green")
        totals = p.totals()
        table.add_row(
            t(p.profile.name),
            t(p.profile.url),
            health,
            t(when(h.get("clock")) if h and h.get("clock") else None),
            t(None if p.agents is None else len(p.agents)),
            t(None if totals["equity"] is None else money(totals["equity"])),
            signed_money(totals["pnl"]) if totals["pnl"] is not None else t(None),
            signed_pct(totals["pnl_pct"]) if totals["pnl_pct"] is not None else t(None),
            t(p.error),
        )
    return table


@servers_app.command("status")
def status(
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for each server.")
    ] = DEFAULT_TIMEOUT,
    as_json: JsonOpt = False,
) -> None:
    """Every server's health, clock, agents, equity and P&L (asked concurrently)."""
    try:
        profiles = _profiles().all()
    except ProfileError as exc:
        fail(f"error: {exc}")
    if not profiles:
        fail("no server profiles: add one with `phantomex servers add NAME --url URL`")
    probes = asyncio.run(probe_all(profiles, timeout))
    if as_json:
        print_json([p.public() for p in probes])
        return
    console.print(status_table(probes))


def register(app: typer.Typer) -> None:
    """Add ``phantomex servers …`` to ``app``."""
    app.add_typer(servers_app, name="servers")
