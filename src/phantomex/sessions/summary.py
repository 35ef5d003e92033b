"""Session summaries: the key figures, the best and worst trades, what each agent did and why.

:func:`figures` gathers them from a session's stored results; :func:`template_text` writes them
as plain text; :func:`llm_text` asks a language model to write them (the caller stores its
prompt and output, as the audit trail does for decisions)."""

from __future__ import annotations

import json
from bisect import bisect_left
from datetime import datetime
from decimal import Decimal
from typing import Any

from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.brains.llm.types import ChatOptions, ChatResult, LLMError
from phantomex.formatting import money, percent, when
from phantomex.research.metrics import TradeRecord, round_trips
from phantomex.serialize import iso
from phantomex.sessions.tracker import BUY_AND_HOLD
from phantomex.store.session_tables import SessionSummaryRow

SYSTEM_PROMPT = (
    "You are a trading analyst. Summarise this paper-trading session for its owner in at most "
    "200 words of plain text: the key figures, the best and the worst trade, and what each agent "
    "did and why (from its reasoning). Use only the figures given; do not invent numbers."
)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else percent(value, fraction=True)


def figures(session: dict[str, Any]) -> dict[str, Any]:
    """The facts a summary states, from a session as :func:`SessionRepo.get` returns it."""
    agents, benchmarks, trips = [], {}, []
    for a in session["agents"]:
        m = a.get("metrics") or {}
        if a["role"] == "benchmark":
            benchmarks[a["name"]] = m.get("total_return")
            continue
        records = [
            TradeRecord(
                symbol=t["symbol"],
                side=t["side"],
                quantity=Decimal(t["quantity"]),
                price=Decimal(t["price"]),
                fee=Decimal(t["fee"]),
                time=_time(t["time"]),
                agent=a["name"],
            )
            for t in a.get("trades", [])
        ]
        trips.extend(round_trips(records))
        acted = a.get("decisions", [])
        agents.append(
            {
                "name": a["name"],
                "brain": a["spec"].get("brain"),
                "model": a["spec"].get("params", {}).get("model"),
                "return": m.get("total_return"),
                "net_profit": m.get("net_profit"),
                "max_drawdown": m.get("max_drawdown"),
                "trades": m.get("trades", 0),
                "win_rate": m.get("win_rate"),
                "buys": sum(1 for d in acted if d["action"] == "buy" and d["status"] == "executed"),
                "sells": sum(
                    1 for d in acted if d["action"] == "sell" and d["status"] == "executed"
                ),
                "holds": a.get("holds", 0),
                "rejected": sum(1 for d in acted if d["status"] == "rejected"),
                "latest_reasons": [d["reasoning"] for d in acted[-3:] if d.get("reasoning")],
                "hold_reasons": [r[0] for r in m.get("hold_reasons", [])[:2]],
            }
        )
    agents.sort(key=lambda x: x["return"] if x["return"] is not None else -1e9, reverse=True)
    trips.sort(key=lambda t: t.pnl)

    def trip(t: Any) -> dict[str, Any]:
        return {
            "agent": t.agent,
            "symbol": t.symbol,
            "pnl": format(t.pnl.quantize(Decimal("0.01")), "f"),
            "return": t.ret,
            "entry": iso(t.entry_time),
            "exit": iso(t.exit_time),
        }

    window = session["window"]
    return {
        "session": session["name"],
        "kind": session["kind"],
        "status": session["status"],
        "symbols": window["symbols"],
        "start": window["start"],
        "end": session.get("clock") or window["end"],
        "agents": agents,
        "benchmarks": benchmarks,
        "best_trade": trip(trips[-1]) if trips else None,
        "worst_trade": trip(trips[0]) if trips else None,
        "parts": parts(session),
    }


def parts(session: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A replay that went live: its replay part and its live part, each with every agent's
    return over it (the live part starts from the equity at the hand-over); None otherwise."""
    window = session["window"]
    stored = window.get("parts")
    if not stored:
        return None
    times = [_time(t) for t in session.get("times", [])]
    at = window.get("handover_at")
    cut = bisect_left(times, _time(at)) if at else len(times)  # first sample of the live part
    spans = [(0, cut), (max(cut - 1, 0), len(times) if at else 0)]
    out = []
    for part, (lo, hi) in zip(stored, spans, strict=True):
        returns = {}
        for a in session["agents"]:
            curve = a.get("equity") or []
            if a["role"] == "agent" and lo < min(hi, len(curve)):
                first, last = Decimal(curve[lo]), Decimal(curve[min(hi, len(curve)) - 1])
                returns[a["name"]] = float(last / first - 1)
        out.append({**part, "returns": returns})
    return out


def template_text(f: dict[str, Any]) -> str:
    """The summary without a language model."""
    lines = [
        f"Session {f['session']!r} ({f['kind']}, {' '.join(f['symbols'])}, "
        f"{when(f['start'])} to {when(f['end'])} UTC, {f['status']})."
    ]
    for i, part in enumerate(f.get("parts") or []):
        label = f"Live part ({part['source']}"
        if i == 0:
            bridged = part.get("bridge_bars") or 0
            label = "Replay part (recorded bars" + (
                f", then {bridged} bars of the live source's history" if bridged else ""
            )
        span = (
            f"{when(part['start'])} to {when(part['end'])} UTC" if part["start"] else "not reached"
        )
        returns = ", ".join(f"{n} {_pct(r)}" for n, r in part["returns"].items())
        lines.append(
            f"{label}, {part['ticks']} ticks): {span}" + (f"; {returns}." if returns else ".")
        )
    if f["agents"]:
        top, last = f["agents"][0], f["agents"][-1]
        lines.append(
            f"Leader: {top['name']} {_pct(top['return'])} ({money(top['net_profit'], sign=True)}); "
            f"last: {last['name']} {_pct(last['return'])}. "
            f"Buy-and-hold {_pct(f['benchmarks'].get(BUY_AND_HOLD))}, cash +0.00%."
        )
    for label in ("best_trade", "worst_trade"):
        t = f[label]
        if t is not None:
            lines.append(
                f"{label.replace('_', ' ').capitalize()}: {t['agent']} {t['symbol']} "
                f"{money(t['pnl'], sign=True)} ({_pct(t['return'])}), {when(t['entry'])} to "
                f"{when(t['exit'])}."
            )
    if f["best_trade"] is None:
        lines.append("No round trip was completed.")
    for a in f["agents"]:
        why = a["latest_reasons"][-1] if a["latest_reasons"] else None
        held = a["hold_reasons"][0] if a["hold_reasons"] else None
        line = (
            f"{a['name']} ({a['model'] or a['brain']}): {a['buys']} buys, {a['sells']} sells, "
            f"{a['holds']} holds, {a['rejected']} rejected; {_pct(a['return'])}, "
            f"max drawdown {_pct(a['max_drawdown'])}."
        )
        if why:
            line += f" Last trade because: {why}"
        elif held:
            line += f" Mostly held: {held}"
        lines.append(line)
    return "\n".join(lines)


def prompt(f: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "Session figures (JSON):\n" + json.dumps(f, indent=1)},
    ]


async def llm_text(
    runtime: LLMRuntime, endpoint: str, model: str, messages: list[dict[str, Any]]
) -> ChatResult:
    """One plain-text chat call on the endpoint's queue (raises LLMError or ValueError)."""
    runtime.endpoint(endpoint)
    async with runtime.call(endpoint, model):
        return await runtime.client(endpoint).chat(
            model, messages, options=ChatOptions(temperature=0.2, max_tokens=600)
        )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def summary_row(
    session: dict[str, Any], kind: str, created_at: datetime, llm: LLMRuntime | None
) -> SessionSummaryRow:
    """The summary of ``session`` as stored now: the configured model's text (prompt and output
    kept) or the template's; a model that fails leaves the template's text and its error."""
    facts = figures(session)
    row = SessionSummaryRow(
        session_id=session["id"],
        kind=kind,
        time=datetime.fromisoformat(facts["end"]),
        created_at=created_at,
        author="template",
        text=template_text(facts),
        figures=facts,
    )
    conf = session["spec"].get("summary_llm")
    if not conf or llm is None:
        return row
    messages = prompt(facts)
    row.endpoint, row.model, row.prompt = conf["endpoint"], conf["model"], messages
    try:
        result = await llm_text(llm, conf["endpoint"], conf["model"], messages)
    except (LLMError, ValueError) as exc:
        row.error = f"{type(exc).__name__}: {exc}"
        return row
    row.raw_output = result.content
    row.latency_seconds = result.latency_seconds
    row.tokens_in, row.tokens_out = result.tokens_in, result.tokens_out
    if result.content.strip():
        row.author, row.text = "llm", result.content.strip()
    else:
        row.error = "the model returned no text"
    return row
