"""``phantomex order``: a person's own order for an agent (``POST /api/agents/{id}/orders``)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer

from phantomex.cli.client import Api, fail
from phantomex.cli.output import console, print_json
from phantomex.cli.output import decision_table as show_decision


class Side(enum.StrEnum):
    buy = "buy"
    sell = "sell"


class OrderKind(enum.StrEnum):
    market = "market"
    limit = "limit"
    stop = "stop"


def amount(text: str | None, what: str) -> str | None:
    """A positive decimal as the API's exact string (None stays None); else exit 1."""
    if text is None:
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        fail(f"error: {what}: must be a number, got {text!r}")
    if not value.is_finite() or value <= 0:
        fail(f"error: {what}: must be a positive number, got {text!r}")
    return format(value, "f")


def order_body(
    side: Side,
    symbol: str,
    *,
    quantity: str | None,
    notional: str | None,
    kind: OrderKind,
    limit_price: str | None,
    stop_price: str | None,
    reason: str | None,
) -> dict[str, Any]:
    """The API's order body from the command's options (sizes and prices as exact strings)."""
    if quantity is not None and notional is not None:
        fail("error: give --quantity or --notional, not both")
    body: dict[str, Any] = {"action": side.value, "symbol": symbol.strip(), "type": kind.value}
    for name, value in (
        ("quantity", amount(quantity, "--quantity")),
        ("notional", amount(notional, "--notional")),
        ("limit_price", amount(limit_price, "--limit-price")),
        ("stop_price", amount(stop_price, "--stop-price")),
    ):
        if value is not None:
            body[name] = value
    if reason:
        body["reasoning"] = reason
    return body


def register(app: typer.Typer, api: Callable[[], Api]) -> None:
    """Add the ``order`` command to ``app``; ``api`` gives the server's client."""

    @app.command("order")
    def order(
        agent: Annotated[str, typer.Argument(help="Agent id (or unique id prefix) or name.")],
        side: Annotated[Side, typer.Argument(case_sensitive=False, help="buy or sell.")],
        symbol: Annotated[str, typer.Argument(help="The symbol, e.g. BTC.")],
        quantity: Annotated[
            str | None, typer.Option(help="Units to trade.", show_default=False)
        ] = None,
        notional: Annotated[
            str | None, typer.Option(help="USD to trade instead of units.", show_default=False)
        ] = None,
        kind: Annotated[
            OrderKind, typer.Option("--type", case_sensitive=False, help="Order type.")
        ] = OrderKind.market,
        limit_price: Annotated[
            str | None, typer.Option(help="The limit of a limit order.", show_default=False)
        ] = None,
        stop_price: Annotated[
            str | None, typer.Option(help="The trigger of a stop order.", show_default=False)
        ] = None,
        reason: Annotated[
            str | None, typer.Option(help="Why (kept with the decision).", show_default=False)
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the API's JSON instead of tables.")
        ] = False,
    ) -> None:
        """Place your own order for an agent (risk-checked; an advisory agent's waits for you).

        Risk checks it like the agent's own decisions. Without --quantity or --notional risk
        sizes it: a buy up to the allocation limit, a sell of the whole position. Exits 1 if
        the order is rejected."""
        body = order_body(
            side,
            symbol,
            quantity=quantity,
            notional=notional,
            kind=kind,
            limit_price=limit_price,
            stop_price=stop_price,
            reason=reason,
        )
        client = api()
        target = client.resolve_agent(agent)
        rec = client.post(f"/api/agents/{target['id']}/orders", body)
        if as_json:
            print_json(rec)
        else:
            console.print(show_decision(rec, target["name"]))
        if rec.get("status") == "rejected":
            raise typer.Exit(1)
