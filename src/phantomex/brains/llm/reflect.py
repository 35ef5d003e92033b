"""An LLM agent's memory: short notes kept in its brain state, and the reflection that writes them.

Notes live in ``ctx.state["notes"]`` (oldest first, at most :data:`MAX_NOTES`, each at most
:data:`MAX_NOTE_CHARS` characters); the kernel persists them with the agent and shows them in the
agent view, and every decide prompt includes them (within the context budget).

Every ``reflect_every`` closed trades (sells) the brain asks the model, once, to look back at its
recent trades (with their realized P&L and reasoning) and its notes, and to answer with 1-3 short
lessons as ``{"lessons": ["...", ...]}``. The answer is read leniently: a wrapper key such as
``lesson``/``notes``/``insights``, a bare list or a single string all count; anything else is kept
as one lesson (the raw text, truncated), so a model that ignores the format still leaves a trace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from phantomex.brains.base import BrainContext
from phantomex.brains.llm.prompt import fmt_money, fmt_number
from phantomex.domain.money import is_valid_price

__all__ = [
    "LESSONS_SCHEMA",
    "MAX_LESSONS",
    "MAX_NOTES",
    "MAX_NOTE_CHARS",
    "parse_lessons",
    "reflection_due",
    "reflection_messages",
    "remember_notes",
]

MAX_NOTES: Final = 20
MAX_NOTE_CHARS: Final = 500
MAX_LESSONS: Final = 3
MAX_TRADES: Final = 10
MAX_REASON_CHARS: Final = 200

LESSONS_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "lessons": {
            "type": "array",
            "items": {"type": "string", "description": "one short, concrete lesson"},
            "description": "1 to 3 lessons for your future decisions",
        }
    },
    "required": ["lessons"],
    "additionalProperties": False,
}

_LESSON_KEYS: Final = ("lessons", "lesson", "notes", "note", "insights", "takeaways", "text")
_THINK_BLOCK = re.compile(
    r"<(think|thinking|reasoning|reflection)\b[^<>]{0,200}>.*?</\1\s*>", re.I | re.S
)
_THINK_OPEN = re.compile(r"<(?:think|thinking|reasoning|reflection)\b[^<>]{0,200}>", re.I)
_THINK_CLOSE = re.compile(r"</(?:think|thinking|reasoning|reflection)\s*>", re.I)
_FENCE = re.compile(r"^[ \t]*(?:```|~~~)[\w+\-.]*[ \t]*$", re.M)
_MAX_JSON_ATTEMPTS: Final = 50


def _one_line(text: object, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


# --------------------------------------------------------------------------- notes


def current_notes(state: dict[str, Any]) -> list[str]:
    """The notes in a brain state (anything unusable is skipped)."""
    notes = state.get("notes")
    if not isinstance(notes, list):
        return []
    return [str(n) for n in notes if isinstance(n, str | int | float) and str(n).strip()]


def remember_notes(state: dict[str, Any], texts: Iterable[str]) -> list[str]:
    """Append ``texts`` (each flattened to one line of at most :data:`MAX_NOTE_CHARS`) to the
    state's notes, keeping the last :data:`MAX_NOTES`; returns the notes actually added."""
    added = [_one_line(t, MAX_NOTE_CHARS) for t in texts if str(t).strip()]
    notes = [*current_notes(state), *added]
    state["notes"] = [_one_line(n, MAX_NOTE_CHARS) for n in notes[-MAX_NOTES:]]
    return added


# --------------------------------------------------------------------------- reflection


def reflection_due(ctx: BrainContext, every: int | None) -> bool:
    """Whether ``every`` more trades were closed since the last reflection."""
    if every is None or every <= 0:
        return False
    try:
        done = int(ctx.state.get("reflected_at_trades", 0) or 0)
    except (TypeError, ValueError):
        done = 0
    if done > ctx.closed_trades:  # the trade history was reset: count afresh
        done = 0
    return ctx.closed_trades - done >= every


def _trade_line(trade: dict[str, Any]) -> str:
    when = trade.get("time")
    stamp = when.isoformat() if isinstance(when, datetime) else str(when or "n/a")
    parts = [
        "TRADE",
        stamp,
        _one_line(trade.get("side") or "n/a", 8),
        _one_line(trade.get("symbol") or "n/a", 32),
        f"qty={fmt_number(trade.get('quantity'), 12)}",
        f"price={fmt_number(trade.get('price'))}",
        f"fee={fmt_money(trade.get('fee'))}",
    ]
    if str(trade.get("side") or "").lower() == "sell":
        parts.append(f"realized_pnl={fmt_money(trade.get('realized_pnl'))}")
    reason = trade.get("reasoning")
    if reason:
        parts.append(
            f"reason={json.dumps(_one_line(reason, MAX_REASON_CHARS), ensure_ascii=False)}"
        )
    return " ".join(parts)


def reflection_messages(ctx: BrainContext, budget_chars: int = 12_000) -> list[dict[str, Any]]:
    """``[system, user]`` messages asking for 1-3 lessons from the recent trades and notes.
    Over ``budget_chars`` the oldest note or trade goes, from whichever takes more characters
    (the newest trade always stays)."""
    system = (
        f"You are the trading agent {_one_line(ctx.agent_name, 100)}, reviewing your own recent "
        "paper trades (spot, long-only) to trade better from now on.\n"
        f"Write 1 to {MAX_LESSONS} short, concrete lessons (each under 200 characters) about what "
        "worked and what did not: entries, exits, sizing, timing. Do not repeat a note you "
        "already have unless it needs correcting.\n"
        'ANSWER with ONE JSON object and nothing else: {"lessons": ["...", "..."]}'
    )
    marks = {s: snap.price for s, snap in ctx.prices.items() if is_valid_price(snap.price)}
    wallet = ctx.wallet
    head = [
        f"GOAL: {_one_line(ctx.goal or 'grow the wallet without large drawdowns', 2000)}",
        "",
        f"TIME {ctx.now.isoformat()}",
        f"WALLET cash={fmt_money(wallet.cash)} equity={fmt_money(wallet.equity(marks))} "
        f"realized_pnl={fmt_money(wallet.realized_pnl)} fees_paid={fmt_money(wallet.fees_paid)}",
        f"CLOSED TRADES so far: {ctx.closed_trades}",
    ]
    trades = [
        _trade_line(t) for t in reversed(ctx.recent_trades[:MAX_TRADES]) if isinstance(t, dict)
    ]
    notes = [f"NOTE {n}" for n in current_notes(ctx.state)]

    def user() -> str:
        lines = list(head)
        lines += ["", "YOUR RECENT TRADES (oldest first)", *(trades or ["none"])]
        if notes:
            lines += ["", "YOUR NOTES SO FAR (oldest first)", *notes]
        lines += ["", 'Reply with {"lessons": [...]} only.']
        return "\n".join(lines)

    while len(system) + len(user()) > budget_chars and (notes or len(trades) > 1):
        notes_size, trades_size = sum(map(len, notes)), sum(map(len, trades))
        del (notes if notes and (notes_size >= trades_size or len(trades) <= 1) else trades)[0]
    return [{"role": "system", "content": system}, {"role": "user", "content": user()}]


def _strip(text: str) -> str:
    text = _THINK_BLOCK.sub(" ", text)
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:  # a lone closing tag: the answer follows the last one
        text = text[closes[-1].end() :]
    opened = _THINK_OPEN.search(text)
    if opened:  # an unclosed block: the model ran out of tokens while thinking
        text = text[: opened.start()]
    return _FENCE.sub("", text).lstrip("\ufeff").strip()


def _lessons_of(value: Any, depth: int = 0) -> list[str] | None:
    if depth > 3:
        return None
    if isinstance(value, str):
        return [value] if value.strip() else None
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            if isinstance(item, str | int | float) and not isinstance(item, bool):
                if str(item).strip():
                    out.append(str(item))
            elif isinstance(item, dict):  # [{"lesson": "..."}, ...]
                out.extend(_lessons_of(item, depth + 1) or [])
        return out or None
    if isinstance(value, dict):
        lowered = {str(k).strip().lower(): v for k, v in value.items()}
        for key in _LESSON_KEYS:
            if key in lowered:
                found = _lessons_of(lowered[key], depth + 1)
                if found:
                    return found
        for sub in value.values():  # {"reflection": {"lessons": [...]}}
            if isinstance(sub, dict):
                found = _lessons_of(sub, depth + 1)
                if found:
                    return found
    return None


def _json_candidates(text: str) -> Iterable[Any]:
    decoder = json.JSONDecoder()
    i = attempts = 0
    while i < len(text) and attempts < _MAX_JSON_ATTEMPTS:
        starts = [p for p in (text.find("{", i), text.find("[", i)) if p >= 0]
        if not starts:
            return
        pos = min(starts)
        attempts += 1
        try:
            value, end = decoder.raw_decode(text, pos)
        except ValueError:
            i = pos + 1
            continue
        yield value
        i = end


def parse_lessons(raw: str | None) -> tuple[list[str], str | None]:
    """``(lessons, error)``: up to :data:`MAX_LESSONS` one-line lessons, and why the answer was
    not the requested JSON (then the raw text, truncated, is the one lesson). Never raises."""
    text = _strip(raw or "")
    if not text:
        return [], "empty response"
    for value in _json_candidates(text):
        if isinstance(value, str):
            continue
        found = _lessons_of(value)
        if found:
            lessons = [_one_line(s, MAX_NOTE_CHARS) for s in found if str(s).strip()]
            return lessons[:MAX_LESSONS], None
    if text[:1] in "\"'" and text[-1:] == text[:1] and len(text) > 2:
        text = text[1:-1]
    return [_one_line(text, MAX_NOTE_CHARS)], 'no {"lessons": [...]} object in the answer'
