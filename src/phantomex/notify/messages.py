"""Kernel events as short human messages. Pure functions: no I/O, no kernel state."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from phantomex.kernel.bus import Event

NameOf = Callable[[str], str | None]

RISK_TITLES = {
    "stop_loss": "Stop-loss",
    "take_profit": "Take-profit",
    "max_hold": "Max hold time",
    "drawdown": "Drawdown exit",
    "daily_loss": "Daily loss limit",
    "kill": "Kill switch ON",
    "kill_released": "Kill switch released",
    "paused": "Agent paused",
    "rejected": "Rejected by risk",
}


@dataclass(frozen=True, slots=True)
class Message:
    """One notification. ``kind`` names its switch in ``[notifications.events]``;
    ``decision_id`` is set on approval requests (the Telegram bot adds buttons to them)."""

    kind: str
    title: str
    body: str
    decision_id: str | None = None
    urgent: bool = False  # never coalesced by the rate limit

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}" if self.body else self.title


def num(value: Any, places: int = 8) -> str:
    """A decimal string without float noise or trailing zeros ('0.00150000' -> '0.0015')."""
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if not d.is_finite():
        return str(d)
    text = f"{round(d, places):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def to_message(event: Event, name_of: NameOf = lambda _: None) -> Message | None:
    """The message for ``event``, or None when the event is not worth a notification."""
    formatter = _FORMATTERS.get(event.type)
    if formatter is None:
        return None
    return formatter(event.data, name_of)


def _agent(data: dict[str, Any], name_of: NameOf, key: str = "agent_id") -> str:
    ident = data.get(key)
    if not ident:
        return ""
    return name_of(str(ident)) or str(ident)[:8]


def _trade(data: dict[str, Any], name_of: NameOf) -> Message:
    t = data.get("trade") or {}
    who = data.get("agent_name") or _agent(t, name_of)
    side = str(t.get("side", "?")).upper()
    notional = ""
    with contextlib.suppress(KeyError, InvalidOperation, ValueError):
        notional = f" = {num(Decimal(str(t['quantity'])) * Decimal(str(t['price'])), 2)} USD"
    body = f"{side} {num(t.get('quantity'))} {t.get('symbol')} @ {num(t.get('price'))}{notional}"
    body += f", fee {num(t.get('fee'), 4)}"
    if t.get("reasoning"):
        body += f"\n{t['reasoning']}"
    return Message("trade", f"Trade: {who}", body)


def _approval(data: dict[str, Any], name_of: NameOf) -> Message | None:
    if data.get("event") != "requested":
        return None  # outcomes follow as trades, or the person made them
    d = data.get("decision") or {}
    who = _agent(d, name_of)
    body = f"{str(d.get('action', '?')).upper()} {num(d.get('quantity'))} {d.get('symbol')}"
    if d.get("price") is not None:
        body += f" @ {num(d['price'])}"
    if d.get("reasoning"):
        body += f"\n{d['reasoning']}"
    if d.get("expires_at"):
        at = datetime.fromisoformat(str(d["expires_at"])).astimezone(UTC)
        body += f"\nAnswer by {at:%H:%M:%S} UTC; its newer decisions wait until you answer"
    return Message(
        "approval", f"Approval needed: {who}", body, decision_id=d.get("id"), urgent=True
    )


def _risk(data: dict[str, Any], name_of: NameOf) -> Message:
    kind = str(data.get("kind", "risk"))
    title = RISK_TITLES.get(kind, kind.replace("_", " ").capitalize())
    who = _agent(data, name_of)
    where = " ".join(p for p in (who, data.get("symbol") or "") if p)
    return Message(
        "rejection" if kind == "rejected" else "risk",
        f"{title}: {where}" if where else title,
        str(data.get("detail", "")),
        urgent=kind in ("kill", "kill_released", "drawdown"),
    )


def _error(data: dict[str, Any], name_of: NameOf) -> Message:
    who = _agent(data, name_of)
    return Message("error", f"Error: {who}" if who else "Error", str(data.get("message", "")))


def _session_summary(data: dict[str, Any], name_of: NameOf) -> Message:
    return Message(
        "session_summary", f"Session {data.get('session_id', '')} summary", str(data.get("text"))
    )


def _feed_stale(data: dict[str, Any], name_of: NameOf) -> Message:
    source = data.get("source", "?")
    if not data.get("stale", True):
        return Message("feed_stale", f"Feed recovered: {source}", "Prices are fresh again.")
    parts = []
    if data.get("age_seconds") is not None:
        parts.append(f"last price {num(data['age_seconds'], 0)} s ago")
    if data.get("last_error"):
        parts.append(f"last error: {data['last_error']}")
    return Message("feed_stale", f"Feed stale: {source}", "; ".join(parts) or "No fresh prices.")


def _server(data: dict[str, Any], name_of: NameOf) -> Message:
    what = str(data.get("event", "?"))
    body = " ".join(str(data[k]) for k in ("version", "url") if data.get(k))
    return Message("server", f"PhantomEx {what}", body, urgent=True)


_FORMATTERS: dict[str, Callable[[dict[str, Any], NameOf], Message | None]] = {
    "trade": _trade,
    "approval": _approval,
    "risk": _risk,
    "error": _error,
    "session_summary": _session_summary,
    "feed_stale": _feed_stale,
    "server": _server,
}
