"""Terminal output: Rich consoles, number formatting and the tables the commands print."""

from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def say(message: str, style: str | None = None) -> None:
    console.print(message, style=style, markup=False, soft_wrap=True)


# -- numbers ---------------------------------------------------------------------------------------
def dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def money(value: Any) -> str:
    d = dec(value)
    return "—" if d is None else f"{d:,.2f}"


def signed_money(value: Any) -> Text:
    d = dec(value)
    if d is None:
        return Text("—")
    return Text(f"{d:+,.2f}", style="green" if d > 0 else "red" if d < 0 else "")


def signed_pct(value: Any) -> Text:
    d = dec(value)
    if d is None:
        return Text("—")
    return Text(f"{d:+.2f}%", style="green" if d > 0 else "red" if d < 0 else "")


def qty(value: Any) -> str:
    d = dec(value)
    if d is None:
        return "—"
    q = d.quantize(Decimal("1e-8")).normalize() if abs(d) < Decimal(10) ** 12 else d
    return f"{q:f}"


def price(value: Any) -> str:
    d = dec(value)
    if d is None:
        return "—"
    if abs(d) >= 1000:
        return f"{d:,.2f}"
    return f"{d:.6g}" if abs(d) < 1 else f"{d:,.4f}".rstrip("0").rstrip(".")


def short_time(value: Any) -> str:
    return "—" if not value else str(value).replace("T", " ").removesuffix("Z")


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
def agents_table(agents: list[dict[str, Any]]) -> Table:
    table = Table(title="Agents", title_justify="left")
    table.add_column("Name", no_wrap=True)
    table.add_column("ID", style="dim", no_wrap=True)
    table.add_column("Brain")
    table.add_column("Mode")
    table.add_column("Status")
    table.add_column("Equity", justify="right")
    table.add_column("P&L", justify="right")
    table.add_column("P&L %", justify="right")
    for a in agents:
        w = a.get("wallet", {})
        table.add_row(
            t(a["name"]),
            t(a["id"][:8]),
            t(a.get("brain")),
            t(a.get("mode")),
            status_cell(a.get("status")),
            money(w.get("equity")),
            signed_money(w.get("pnl")),
            signed_pct(w.get("pnl_pct")),
        )
    return table


def positions_table(positions: list[dict[str, Any]]) -> Table:
    table = Table(title="Positions", title_justify="left")
    for name in ("Symbol", "Quantity", "Avg cost", "Mark", "Value", "Unrealized P&L"):
        table.add_column(name, justify="left" if name == "Symbol" else "right")
    for p in positions:
        table.add_row(
            t(p["symbol"]),
            qty(p.get("quantity")),
            price(p.get("avg_cost")),
            price(p.get("mark")),
            money(p.get("value")),
            signed_money(p.get("unrealized_pnl")),
        )
    return table


def wallet_table(agent: dict[str, Any]) -> Table:
    w = agent.get("wallet", {})
    table = Table(show_header=False, title=f"{agent['name']} ({agent['id']})", title_justify="left")
    table.add_column("Field", style="bold")
    table.add_column("Value")
    rows: list[tuple[str, Any]] = [
        ("Brain", f"{agent.get('brain')} — {agent.get('brain_description', '')}"),
        ("Mode", agent.get("mode")),
        ("Status", status_cell(agent.get("status"))),
        ("Status reason", agent.get("status_reason")),
        ("Symbols", ", ".join(agent.get("symbols", []))),
        ("Interval", f"{agent.get('interval_seconds')} s"),
        ("Goal", agent.get("goal")),
        ("Params", json.dumps(agent.get("params", {}))),
        ("Allowance", money(w.get("allowance"))),
        ("Deposits", money(w.get("deposits"))),
        ("Cash", money(w.get("cash"))),
        ("Equity", money(w.get("equity"))),
        ("P&L", signed_money(w.get("pnl"))),
        ("P&L %", signed_pct(w.get("pnl_pct"))),
        ("Realized P&L", signed_money(w.get("realized_pnl"))),
        ("Unrealized P&L", signed_money(w.get("unrealized_pnl"))),
        ("Fees paid", money(w.get("fees_paid"))),
        ("Last decided", short_time(agent.get("last_decided_at"))),
    ]
    for label, value in rows:
        table.add_row(label, value if isinstance(value, Text) else t(value))
    return table


def decisions_table(
    decisions: list[dict[str, Any]], names: dict[str, str], title: str = "Decisions"
) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("ID", style="dim", no_wrap=True)
    table.add_column("Agent", no_wrap=True)
    table.add_column("Time", no_wrap=True)
    table.add_column("Action")
    table.add_column("Symbol")
    table.add_column("Quantity", justify="right")
    table.add_column("Price", justify="right")
    table.add_column("Status")
    table.add_column("Reason")
    for d in decisions:
        reason = d.get("reason") or d.get("reasoning") or ""
        if d.get("reason") and d.get("reasoning") and d["reason"] != d["reasoning"]:
            reason = f"{d['reason']} — {d['reasoning']}"
        table.add_row(
            t(d["id"][:12]),
            t(names.get(d["agent_id"], d["agent_id"][:8])),
            t(short_time(d.get("time"))),
            t(d.get("action")),
            t(d.get("symbol")),
            qty(d.get("quantity")),
            price(d.get("price")),
            status_cell(d.get("status")),
            t(reason),
        )
    return table


def decision_table(d: dict[str, Any], agent_name: str) -> Table:
    table = Table(show_header=False, title=f"Decision {d['id']}", title_justify="left")
    table.add_column("Field", style="bold")
    table.add_column("Value")
    rows: list[tuple[str, Any]] = [
        ("Agent", agent_name),
        ("Time", short_time(d.get("time"))),
        ("Source", d.get("source")),
        ("Action", d.get("action")),
        ("Symbol", d.get("symbol")),
        ("Quantity", qty(d.get("quantity")) if d.get("quantity") is not None else None),
        ("Price", price(d.get("price")) if d.get("price") is not None else None),
        ("Status", status_cell(d.get("status"))),
        ("Reason", d.get("reason")),
        ("Reasoning", d.get("reasoning") if d.get("reasoning") != d.get("reason") else None),
        ("Expires", short_time(d.get("expires_at")) if d.get("expires_at") else None),
    ]
    for label, value in rows:
        if value is None and label in ("Reasoning", "Expires"):
            continue
        table.add_row(label, value if isinstance(value, Text) else t(value))
    failed = [c for c in d.get("checks", []) if not c.get("passed")]
    for c in failed:
        table.add_row("Failed check", t(f"{c.get('name')}: {c.get('detail')}", "red"))
    return table


def trades_table(trades: list[dict[str, Any]], total: int, offset: int) -> Table:
    shown = f"{offset + 1}-{offset + len(trades)} of {total}" if trades else f"0 of {total}"
    table = Table(title=f"Trades ({shown})", title_justify="left")
    table.add_column("Time", no_wrap=True)
    table.add_column("Agent", no_wrap=True)
    table.add_column("Side")
    table.add_column("Symbol")
    table.add_column("Quantity", justify="right")
    table.add_column("Price", justify="right")
    table.add_column("Notional", justify="right")
    table.add_column("Fee", justify="right")
    table.add_column("Realized P&L", justify="right")
    for tr in trades:
        side = str(tr.get("side"))
        table.add_row(
            t(short_time(tr.get("time"))),
            t(tr.get("agent_name")),
            t(side, "green" if side == "buy" else "red"),
            t(tr.get("symbol")),
            qty(tr.get("quantity")),
            price(tr.get("price")),
            money(tr.get("notional")),
            money(tr.get("fee")),
            signed_money(tr.get("realized_pnl")) if tr.get("realized_pnl") is not None else t("—"),
        )
    return table


def prices_table(prices: list[dict[str, Any]]) -> Table:
    table = Table(title="Prices", title_justify="left")
    table.add_column("Symbol")
    table.add_column("Price", justify="right")
    table.add_column("24h", justify="right")
    table.add_column("Time", no_wrap=True)
    for p in prices:
        table.add_row(
            t(p.get("symbol")),
            price(p.get("price")),
            signed_pct(p.get("change_24h_pct")),
            t(short_time(p.get("time"))),
        )
    return table


def strategies_table(strategies: list[dict[str, Any]]) -> Table:
    table = Table(title="Strategies", title_justify="left", show_lines=True)
    table.add_column("Name", no_wrap=True)
    table.add_column("Description")
    table.add_column("Parameters (default)")
    for s in strategies:
        props = (s.get("schema") or {}).get("properties", {})
        params = "\n".join(
            f"{k}={json.dumps(v['default'])}" if "default" in v else k for k, v in props.items()
        )
        title = s.get("title") or ""
        desc = f"{title}: {s.get('description', '')}" if title else s.get("description", "")
        table.add_row(t(s.get("name")), t(desc), t(params))
    return table
