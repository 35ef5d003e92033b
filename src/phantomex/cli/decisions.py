"""``phantomex approve|reject|pending|decisions``: advisory decisions and an agent's history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

import typer

from phantomex.approvals import pending_summary
from phantomex.cli.client import Api
from phantomex.cli.options import AgentArg, DecisionArg, JsonOpt
from phantomex.cli.output import console, decision_table, decisions_table, print_json, say
from phantomex.formatting import latency


def names_by_id(client: Api) -> dict[str, str]:
    """Agent names by id."""
    return {a["id"]: a["name"] for a in client.agents()}


def _resolve_decision(client: Api, action: str, decision: str, as_json: bool) -> None:
    """Approve or reject a pending decision and show it."""
    decision_id = client.resolve_decision(decision)
    rec = client.post(f"/api/decisions/{decision_id}/{action}")
    if as_json:
        print_json(rec)
        return
    name = names_by_id(client).get(rec["agent_id"], rec["agent_id"])
    console.print(decision_table(rec, name))


def register(app: typer.Typer, api: Callable[[], Api]) -> None:
    """Add the decision commands to ``app``; ``api`` gives the server's client."""

    @app.command()
    def approve(decision: DecisionArg, as_json: JsonOpt = False) -> None:
        """Approve a pending advisory decision (risk is checked again at the current price)."""
        _resolve_decision(api(), "approve", decision, as_json)

    @app.command()
    def reject(decision: DecisionArg, as_json: JsonOpt = False) -> None:
        """Reject a pending advisory decision."""
        _resolve_decision(api(), "reject", decision, as_json)

    @app.command()
    def pending(as_json: JsonOpt = False) -> None:
        """Advisory decisions waiting for a person: each with its expiry and how many newer
        decisions of its agent are held until you answer it."""
        client = api()
        recs = client.get("/api/decisions", status="pending", limit=1000)
        if as_json:
            print_json(recs)
            return
        if not recs:
            say("no pending decisions")
            return
        names = names_by_id(client)
        console.print(decisions_table(recs, names, title="Pending decisions"))
        now = datetime.now(UTC)
        for rec in recs:
            who = names.get(rec["agent_id"], rec["agent_id"][:8])
            say(f"{rec['id'][:12]} {who}: {pending_summary(rec, now)}")
        say("approve with `phantomex approve ID`, reject with `phantomex reject ID`")

    @app.command()
    def decisions(
        agent: AgentArg,
        limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
        show_prompt: Annotated[
            bool,
            typer.Option(
                "--show-prompt", help="Also print each decision's LLM calls: prompt and raw answer."
            ),
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """An agent's latest decisions, newest first."""
        client = api()
        a = client.resolve_agent(agent)
        recs = client.get(f"/api/agents/{a['id']}/decisions", limit=limit)
        if show_prompt:
            recs = [client.get(f"/api/agents/{a['id']}/decisions/{r['id']}") for r in recs]
        if as_json:
            print_json(recs)
            return
        console.print(
            decisions_table(recs, {a["id"]: a["name"]}, title=f"Decisions of {a['name']}")
        )
        if show_prompt:
            for rec in recs:
                for call in rec.get("llm_calls", []):
                    console.rule(f"decision {rec['id'][:12]} · {call['purpose']} · {call['model']}")
                    for message in call["messages"]:
                        console.print(f"[bold]{message['role']}[/bold]", markup=True)
                        console.print(message["content"], markup=False, highlight=False)
                    console.print("[bold]answer[/bold]", markup=True)
                    console.print(
                        call.get("raw_response") or f"(error: {call.get('error')})",
                        markup=False,
                        highlight=False,
                    )
                    console.print(
                        f"latency {latency(call.get('latency_seconds'))} · tokens in "
                        f"{call.get('tokens_in')} · out {call.get('tokens_out')} · cached "
                        f"{call.get('cached')}",
                        markup=False,
                    )
                warnings = (rec.get("meta") or {}).get("warnings") or []
                if warnings:
                    console.print(
                        f"[bold]warnings of decision {rec['id'][:12]}[/bold]", markup=True
                    )
                    for warning in warnings:
                        console.print(f"- {warning}", markup=False, highlight=False)
