"""``phantomex exchange``: keys, agents' venues, reconciliation and cancelling exchange orders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from phantomex.cli.client import Api
from phantomex.cli.fittable import FitTable, key, text
from phantomex.cli.output import console, print_json

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of tables.")]
VenueArg = Annotated[str, typer.Argument(help="binance-testnet, <exchange>-testnet or <exchange>.")]


def register(app: typer.Typer, api: Callable[[], Api]) -> None:
    """Add the ``exchange`` command group to ``app``; ``api`` gives the server's client."""
    group = typer.Typer(help="Exchange venues (testnets first): keys, venues, reconciliation.")
    app.add_typer(group, name="exchange", no_args_is_help=True)

    @group.command("keys")
    def keys(
        venue: VenueArg,
        api_key: Annotated[
            str, typer.Option(prompt=True, hide_input=True, help="The venue's API key.")
        ],
        secret: Annotated[
            str, typer.Option(prompt=True, hide_input=True, help="The venue's API secret.")
        ],
    ) -> None:
        """Store a venue's API key and secret (encrypted on the server, never shown again)."""
        out = api().call(
            "PUT", f"/api/exchange/keys/{venue}", json={"api_key": api_key, "secret": secret}
        )
        state = "ready" if out["available"] else "stored (not tradable yet: see `venues`)"
        console.print(f"keys for {out['venue']} {state}")

    @group.command("venue")
    def venue(
        agent: Annotated[str, typer.Argument(help="Agent id (or unique id prefix) or name.")],
        name: Annotated[str, typer.Argument(help="paper, <exchange>-testnet or <exchange>.")],
    ) -> None:
        """Put an agent on paper or an exchange venue."""
        client = api()
        target = client.resolve_agent(agent)
        out = client.call("PUT", f"/api/agents/{target['id']}/venue", json={"venue": name})
        console.print(f"agent {target['name']} now trades on {out['venue']}")

    @group.command("venues")
    def venues(as_json: JsonOpt = False) -> None:
        """Venues with keys or agents, and whether they can trade."""
        rows: list[dict[str, Any]] = api().get("/api/exchange/venues")
        if as_json:
            print_json(rows)
            return
        table = FitTable(
            key("venue"),
            key("testnet"),
            key("keys"),
            key("available"),
            key("agents", right=True),
            text("why not", min_width=16),
        )
        for r in rows:
            table.add_row(
                r["venue"],
                "yes" if r["testnet"] else "REAL MONEY",
                "yes" if r["has_keys"] else "no",
                "yes" if r["available"] else "no",
                str(len(r["agents"])),
                r["refusal"] or "",
            )
        console.print(table)

    @group.command("reconcile")
    def reconcile(as_json: JsonOpt = False) -> None:
        """Compare the ledger with each exchange account; exit 1 when anything differs.
        Nothing is adjusted: differences are for a person to look into."""
        reports: list[dict[str, Any]] = api().get("/api/exchange/reconcile")
        if as_json:
            print_json(reports)
        else:
            for report in reports:
                findings = report["findings"]
                head = "clean" if report["clean"] else f"{len(findings)} finding(s)"
                console.print(f"[bold]{report['venue']}[/bold]: {head}")
                for line in findings:
                    console.print(f"  {line}", markup=False)
            if not reports:
                console.print("no agent trades on an exchange venue")
        if any(not r["clean"] for r in reports):
            raise typer.Exit(1)

    @group.command("cancel-orders")
    def cancel_orders(
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    ) -> None:
        """Cancel every open order on every exchange account."""
        if not yes:
            typer.confirm("Cancel ALL open orders on every exchange account?", abort=True)
        out = api().post("/api/exchange/cancel-open-orders")
        for venue_name, ids in out["cancelled"].items():
            console.print(f"{venue_name}: cancelled {len(ids)} order(s)")
