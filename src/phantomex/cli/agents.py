"""``phantomex agents``: list, add, remove, pause, resume, switch mode and show agents."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from phantomex.cli.client import Api, fail
from phantomex.cli.options import AgentArg, JsonOpt, ModeChoice, YesOpt
from phantomex.cli.output import (
    agents_table,
    console,
    positions_table,
    print_json,
    say,
    wallet_table,
)
from phantomex.formatting import money


def parse_pairs(pairs: list[str], what: str) -> dict[str, Any]:
    """``key=value`` options; values are JSON when they parse, else strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            fail(f"error: {what}: expected key=value, got {pair!r}")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def _agent_action(client: Api, agent: str, action: str, verb: str) -> None:
    """Pause or resume an agent and say its status."""
    a = client.resolve_agent(agent)
    out = client.post(f"/api/agents/{a['id']}/{action}")
    say(f"{out['name']} {verb}: status {out['status']}")


def register(app: typer.Typer, api: Callable[[], Api]) -> None:
    """Add the ``agents`` commands to ``app``; ``api`` gives the server's client."""
    agents_app = typer.Typer(help="Create, inspect and control agents.", no_args_is_help=True)
    app.add_typer(agents_app, name="agents")

    @agents_app.command("list")
    def agents_list(as_json: JsonOpt = False) -> None:
        """Every agent with its equity and P&L."""
        agents = api().agents()
        if as_json:
            print_json(agents)
            return
        if not agents:
            say("no agents yet: create one with `phantomex agents add`")
            return
        console.print(agents_table(agents))

    @agents_app.command("add")
    def agents_add(
        name: Annotated[str, typer.Argument(help="A unique name.")],
        brain: Annotated[str, typer.Option(help="Strategy (see `phantomex strategies`).")],
        symbols: Annotated[str, typer.Option(help="Comma-separated symbols, e.g. BTC,ETH.")],
        param: Annotated[
            list[str] | None,
            typer.Option("--param", "-p", help="Brain parameter key=value (repeatable)."),
        ] = None,
        risk: Annotated[
            list[str] | None,
            typer.Option(
                "--risk", help="Risk setting key=value (repeatable), e.g. stop_loss_pct=3."
            ),
        ] = None,
        allowance: Annotated[str, typer.Option(help="Starting paper cash in USD.")] = "10000",
        mode: Annotated[ModeChoice, typer.Option(case_sensitive=False)] = ModeChoice.autonomous,
        interval: Annotated[int, typer.Option(help="Seconds between decisions.")] = 60,
        goal: Annotated[str, typer.Option(help="Free-text goal (LLM brains read it).")] = "",
        source: Annotated[
            str | None,
            typer.Option(help="Only this market source's symbols (see `phantomex sources`)."),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Create an agent with its own paper wallet."""
        body: dict[str, Any] = {
            "name": name,
            "brain": brain,
            "symbols": [s.strip() for s in symbols.split(",") if s.strip()],
            "params": parse_pairs(param or [], "param"),
            "allowance": allowance,
            "mode": mode.value,
            "interval_seconds": interval,
            "goal": goal,
        }
        if risk:
            body["risk"] = parse_pairs(risk, "risk")
        if source:
            body["source"] = source
        agent = api().post("/api/agents", body)
        if as_json:
            print_json(agent)
            return
        say(
            f"created agent {agent['name']} ({agent['id']}) with {money(allowance, exact=True)}",
            "green",
        )
        console.print(wallet_table(agent))

    @agents_app.command("remove")
    def agents_remove(agent: AgentArg, yes: YesOpt = False) -> None:
        """Delete an agent (its trades stay in the history)."""
        client = api()
        skipped = [
            p
            for p in client.get("/health").get("problems") or []
            if p.get("kind") == "agent" and agent.strip() in (p.get("id"), p.get("name"))
        ]  # an agent start-up could not load is not in the list: remove it by id or name
        a = skipped[0] if len(skipped) == 1 else client.resolve_agent(agent)
        if not yes:
            typer.confirm(f"Remove agent {a['name']} ({a['id']})?", abort=True)
        client.call("DELETE", f"/api/agents/{a['id']}")
        say(f"removed agent {a['name']} ({a['id']})")

    @agents_app.command("pause")
    def agents_pause(agent: AgentArg) -> None:
        """Stop an agent deciding (positions stay open)."""
        _agent_action(api(), agent, "pause", "paused")

    @agents_app.command("resume")
    def agents_resume(agent: AgentArg) -> None:
        """Let a paused or stopped agent decide again."""
        _agent_action(api(), agent, "resume", "resumed")

    @agents_app.command("mode")
    def agents_mode(
        agent: AgentArg,
        mode: Annotated[ModeChoice, typer.Argument(case_sensitive=False, help="The new mode.")],
    ) -> None:
        """Switch between autonomous (trades itself) and advisory (a person approves)."""
        client = api()
        a = client.resolve_agent(agent)
        out = client.call("PATCH", f"/api/agents/{a['id']}/mode", json={"mode": mode.value})
        say(f"{out['name']} is now {out['mode']}")

    @agents_app.command("show")
    def agents_show(agent: AgentArg, as_json: JsonOpt = False) -> None:
        """One agent's settings, wallet and positions."""
        a = api().resolve_agent(agent)
        if as_json:
            print_json(a)
            return
        console.print(wallet_table(a))
        positions = a.get("wallet", {}).get("positions", [])
        if positions:
            console.print(positions_table(positions))
        else:
            say("no open positions")
