"""Terminal output: Rich consoles, table cells and the tables the commands print (numbers and
times as :mod:`phantomex.formatting` writes them; ``--json`` output is never formatted)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.text import Text

from phantomex import formatting as fmt
from phantomex.cli.fittable import FitTable, key, text
from phantomex.cli.json_out import print_json as print_json  # what the commands import

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def say(message: str, style: str | None = None) -> None:
    console.print(message, style=style, markup=False, soft_wrap=True)


# -- cells -----------------------------------------------------------------------------------------
def _tone(d: Any) -> str:
    value = fmt.to_decimal(d)
    return "green" if value is not None and value > 0 else "red" if value else ""


def signed_money(value: Any) -> Text:
    """A gain or loss: ``+$3.24`` in green, ``-$3.24`` in red."""
    return Text(fmt.money(value, sign=True), style=_tone(value))


def signed_pct(value: Any) -> Text:
    """A return given in percent (1.23 for +1.23%), coloured."""
    return Text(fmt.percent(value), style=_tone(value))


def t(value: Any, style: str = "") -> Text:
    """A table cell that is never read as Rich markup."""
    return Text("—" if value is None or value == "" else str(value), style=style)


STATUS_STYLE = {
    "running": "green",
    "paused": "yellow",
    "stopped": "red",
    "error": "red",
    "executed": "green",
    "pending": "yellow",
    "rejected": "red",
    "expired": "dim",
    "held": "dim",
}


def status_cell(value: Any) -> Text:
    return t(value, STATUS_STYLE.get(str(value), ""))


# -- tables ----------------------------------------------------------------------------------------
def agents_table(agents: list[dict[str, Any]]) -> FitTable:
    table = FitTable(
        text("Name", min_width=8),
        key("ID", style="dim"),
        text("Brain", min_width=8),
        key("Mode"),
        key("Status"),
        key("Equity", right=True),
        key("P&L", right=True),
        key("P&L %", right=True),
        title="Agents",
    )
    for a in agents:
        w = a.get("wallet", {})
        table.add_row(
            t(a["name"]),
            t(a["id"][:8]),
            t(a.get("brain")),
            t(a.get("mode")),
            status_cell(a.get("status")),
            fmt.money(w.get("equity")),
            signed_money(w.get("pnl")),
            signed_pct(w.get("pnl_pct")),
        )
    return table


def positions_table(positions: list[dict[str, Any]]) -> FitTable:
    table = FitTable(
        key("Symbol"),
        key("Quantity", right=True),
        key("Avg cost", right=True),
        key("Mark", right=True),
        key("Value", right=True),
        key("Unrealized\nP&L", right=True),
        title="Positions",
    )
    for p in positions:
        table.add_row(
            t(p["symbol"]),
            fmt.quantity(p.get("quantity")),
            fmt.price(p.get("avg_cost")),
            fmt.price(p.get("mark")),
            fmt.money(p.get("value")),
            signed_money(p.get("unrealized_pnl")),
        )
    return table


def _fields(title: str) -> FitTable:
    return FitTable(
        key("Field", style="bold"), text("Value", min_width=20), title=title, show_header=False
    )


def wallet_table(agent: dict[str, Any]) -> FitTable:
    w = agent.get("wallet", {})
    table = _fields(f"{agent['name']} ({agent['id']})")
    rows: list[tuple[str, Any]] = [
        ("Brain", f"{agent.get('brain')} — {agent.get('brain_description', '')}"),
        ("Mode", agent.get("mode")),
        ("Status", status_cell(agent.get("status"))),
        ("Status reason", agent.get("status_reason")),
        ("Symbols", ", ".join(agent.get("symbols", []))),
        ("Interval", f"{agent.get('interval_seconds')} s"),
        ("Goal", agent.get("goal")),
        ("Params", json.dumps(agent.get("params", {}))),
        ("Allowance", fmt.money(w.get("allowance"))),
        ("Deposits", fmt.money(w.get("deposits"))),
        ("Cash", fmt.money(w.get("cash"))),
        ("Equity", fmt.money(w.get("equity"))),
        ("P&L", signed_money(w.get("pnl"))),
        ("P&L %", signed_pct(w.get("pnl_pct"))),
        ("Realized P&L", signed_money(w.get("realized_pnl"))),
        ("Unrealized P&L", signed_money(w.get("unrealized_pnl"))),
        ("Fees paid", fmt.money(w.get("fees_paid"))),
        ("Last decided", fmt.when(agent.get("last_decided_at"))),
    ]
    for label, value in rows:
        table.add_row(label, value if isinstance(value, Text) else t(value))
    return table


def _reason(d: dict[str, Any]) -> str:
    reason = d.get("reason") or d.get("reasoning") or ""
    if d.get("reason") and d.get("reasoning") and d["reason"] != d["reasoning"]:
        reason = f"{d['reason']} — {d['reasoning']}"
    return str(reason)


def decisions_table(
    decisions: list[dict[str, Any]], names: dict[str, str], title: str = "Decisions"
) -> FitTable:
    table = FitTable(
        key("ID", style="dim"),
        text("Agent"),
        text("Time"),
        key("Action"),
        key("Symbol"),
        key("Quantity", right=True),
        key("Price", right=True),
        key("Status"),
        text("Reason", min_width=24, detail=True),
        title=title,
    )
    for d in decisions:
        table.add_row(
            t(d["id"][:8]),
            t(names.get(d["agent_id"], d["agent_id"][:8])),
            fmt.when(d.get("time")),
            t(d.get("action")),
            t(d.get("symbol")),
            fmt.quantity(d.get("quantity")),
            fmt.price(d.get("price")),
            status_cell(d.get("status")),
            t(_reason(d)),
        )
    return table


def decision_table(d: dict[str, Any], agent_name: str) -> FitTable:
    table = _fields(f"Decision {d['id']}")
    rows: list[tuple[str, Any]] = [
        ("Agent", agent_name),
        ("Time", fmt.when(d.get("time"))),
        ("Source", d.get("source")),
        ("Action", d.get("action")),
        ("Symbol", d.get("symbol")),
        ("Quantity", fmt.quantity(d.get("quantity")) if d.get("quantity") is not None else None),
        ("Notional", fmt.money(d.get("notional")) if d.get("notional") is not None else None),
        ("Price", fmt.price(d.get("price")) if d.get("price") is not None else None),
        ("Status", status_cell(d.get("status"))),
        ("Reason", d.get("reason")),
        ("Reasoning", d.get("reasoning") if d.get("reasoning") != d.get("reason") else None),
        ("Expires", fmt.when(d.get("expires_at")) if d.get("expires_at") else None),
    ]
    for label, value in rows:
        if value is None and label in ("Notional", "Reasoning", "Expires"):
            continue
        table.add_row(label, value if isinstance(value, Text) else t(value))
    failed = [c for c in d.get("checks", []) if not c.get("passed")]
    for c in failed:
        table.add_row("Failed check", t(f"{c.get('name')}: {c.get('detail')}", "red"))
    return table


def trades_table(trades: list[dict[str, Any]], total: int, offset: int) -> FitTable:
    shown = f"{offset + 1}-{offset + len(trades)} of {total}" if trades else f"0 of {total}"
    table = FitTable(
        text("Time"),
        text("Agent"),
        key("Side"),
        key("Symbol"),
        key("Quantity", right=True),
        key("Price", right=True),
        key("Notional", right=True),
        key("Fee", right=True),
        key("Realized\nP&L", right=True),
        title=f"Trades ({shown})",
    )
    for tr in trades:
        side = str(tr.get("side"))
        table.add_row(
            fmt.when(tr.get("time")),
            t(tr.get("agent_name")),
            t(side, "green" if side == "buy" else "red"),
            t(tr.get("symbol")),
            fmt.quantity(tr.get("quantity")),
            fmt.price(tr.get("price")),
            fmt.money(tr.get("notional")),
            fmt.money(tr.get("fee")),
            signed_money(tr.get("realized_pnl")) if tr.get("realized_pnl") is not None else None,
        )
    return table


def prices_table(prices: list[dict[str, Any]]) -> FitTable:
    table = FitTable(
        key("Symbol"),
        key("Price", right=True),
        key("24h", right=True),
        text("Time"),
        text("Trading"),
        title="Prices",
    )
    for p in prices:
        table.add_row(
            t(p.get("symbol")),
            fmt.price(p.get("price")),
            signed_pct(p.get("change_24h_pct")),
            fmt.when(p.get("time")),
            held_because(p.get("suspect_detail")) if p.get("suspect") else "yes",
        )
    return table


def held_because(detail: dict[str, Any] | None) -> str:
    """Why the price guard holds trading on a symbol, for the prices table."""
    d = detail or {}
    return (
        f"held: {d.get('reason', 'price suspect')} "
        f"({d.get('confirmations', 0)}/{d.get('needed', '?')} confirmations)"
    )


def strategies_table(strategies: list[dict[str, Any]]) -> FitTable:
    table = FitTable(
        key("Name"),
        text("Description", min_width=20),
        text("Parameters (default)", min_width=12),
        title="Strategies",
        lines=True,
    )
    for s in strategies:
        props = (s.get("schema") or {}).get("properties", {})
        params = "\n".join(
            f"{k}={json.dumps(v['default'])}" if "default" in v else k for k, v in props.items()
        )
        title = s.get("title") or ""
        desc = f"{title}: {s.get('description', '')}" if title else s.get("description", "")
        table.add_row(t(s.get("name")), t(desc), t(params))
    return table
