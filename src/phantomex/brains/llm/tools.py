"""The tools an LLM agent may call before it decides (tool-use / ReAct mode).

* ``get_price_history(symbol, bars)``: the last ``bars`` closes (at most 200) of bars that opened
  before the clock;
* ``get_indicators(symbol)``: RSI(14), SMA(10), SMA(30), EMA(10) from up to 200 bars before the
  clock (TA-Lib, as in the prompt's INDICATORS lines);
* ``get_portfolio()``: cash, equity, holdings with average cost, mark and unrealized P&L, and
  the largest quantity risk would allow to buy now;
* ``place_order(action, symbol, quantity?, notional?, reasoning?)``: the decision, validated
  exactly like a JSON answer (:func:`~phantomex.brains.llm.parse.parse_decision`); it ends the
  loop (the kernel's risk checks still apply);
* ``note(text)``: appends a short note to the agent's memory (``state["notes"]``).

:func:`run_tool` never raises: an unknown tool, bad arguments or an unknown symbol come back as
``{"error": "..."}`` for the model to read and correct. Results are compact JSON with numbers
formatted from Decimal (no float noise).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from phantomex.brains.base import BrainContext
from phantomex.brains.indicators import ema, is_clean_series, rsi, sma
from phantomex.brains.llm.parse import parse_decision
from phantomex.brains.llm.prompt import fmt_money, fmt_number
from phantomex.brains.llm.reflect import MAX_NOTE_CHARS, MAX_NOTES, remember_notes
from phantomex.brains.llm.types import ToolCall
from phantomex.domain.models import Action, Bar, Decision
from phantomex.domain.money import is_valid_price

__all__ = [
    "DEFAULT_HISTORY_BARS",
    "MAX_HISTORY_BARS",
    "TOOL_NAMES",
    "ToolOutcome",
    "run_tool",
    "tool_specs",
]

MAX_HISTORY_BARS: Final = 200
DEFAULT_HISTORY_BARS: Final = 20
INDICATOR_BARS: Final = 200
TOOL_NAMES: Final = ("get_price_history", "get_indicators", "get_portfolio", "place_order", "note")


class ToolError(Exception):
    """A mistake in a tool call, reported back to the model."""


@dataclass(slots=True)
class ToolOutcome:
    """What a tool call gives: ``content`` goes back to the model as the tool result;
    ``decision`` (place_order) ends the loop; ``error`` is set when the call was refused."""

    content: str
    decision: Decision | None = None
    error: str | None = None


# --------------------------------------------------------------------------- specs


def _function(
    name: str, description: str, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


def tool_specs(symbols: list[str]) -> list[dict[str, Any]]:
    """The tools in the OpenAI function format (which Ollama's ``tools`` also takes); only
    keywords both APIs pass through (type, description, enum, required)."""
    allowed = list(dict.fromkeys(symbols))
    symbol: dict[str, Any] = {"type": "string", "description": "ticker, one of the allowed"}
    if allowed:
        symbol["enum"] = allowed
    return [
        _function(
            "get_price_history",
            f"The last closes of a symbol, oldest first (at most {MAX_HISTORY_BARS} bars).",
            {
                "symbol": symbol,
                "bars": {
                    "type": "integer",
                    "description": f"how many bars (1-{MAX_HISTORY_BARS}, "
                    f"default {DEFAULT_HISTORY_BARS})",
                },
            },
            ["symbol"],
        ),
        _function(
            "get_indicators",
            "RSI(14), SMA(10), SMA(30) and EMA(10) of a symbol's closes, as of now.",
            {"symbol": symbol},
            ["symbol"],
        ),
        _function(
            "get_portfolio",
            "Your cash, equity, holdings (average cost, mark, unrealized P&L) and the largest "
            "quantity of each symbol you may buy now.",
            {},
            [],
        ),
        _function(
            "place_order",
            "Submit your decision for this turn and end it: buy, sell or hold. Leave quantity "
            "and notional empty to let the risk engine size the trade (buy: as much as allowed; "
            "sell: the whole position).",
            {
                "action": {"type": "string", "enum": ["buy", "sell", "hold"]},
                "symbol": {**symbol, "description": "ticker to trade (empty for hold)"},
                "quantity": {"type": "number", "description": "units of the asset (> 0)"},
                "notional": {"type": "number", "description": "size in USD (> 0)"},
                "reasoning": {"type": "string", "description": "one or two sentences"},
                "confidence": {"type": "number", "description": "between 0 and 1"},
            },
            ["action"],
        ),
        _function(
            "note",
            f"Keep a short note for your future turns (the last {MAX_NOTES} are kept, each at "
            f"most {MAX_NOTE_CHARS} characters).",
            {"text": {"type": "string", "description": "the note"}},
            ["text"],
        ),
    ]


# --------------------------------------------------------------------------- helpers


def _num(value: object, digits: int = 10) -> float | None:
    """A JSON number with at most ``digits`` significant digits (None when missing)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    text = fmt_number(value, digits)
    return None if text == "n/a" else float(text)


def _money(value: object) -> float | None:
    text = fmt_money(value)
    return None if text == "n/a" else float(text)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _symbol(ctx: BrainContext, args: dict[str, Any]) -> str:
    raw = args.get("symbol")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ToolError("symbol is required")
    if not isinstance(raw, str):
        raise ToolError(f"symbol must be a string, got {type(raw).__name__}")
    symbol = raw.strip().upper().lstrip("$")
    if symbol not in ctx.symbols:
        allowed = ", ".join(ctx.symbols) or "none"
        raise ToolError(f"unknown symbol {raw.strip()[:32]!r}; allowed: {allowed}")
    return symbol


def _bar_count(value: object) -> tuple[int, bool]:
    """(bars, capped) from a ``bars`` argument."""
    if value is None:
        return DEFAULT_HISTORY_BARS, False
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number != int(number):
        raise ToolError(f"bars must be a whole number, got {str(value)[:32]!r}")
    if number < 1:
        raise ToolError(f"bars must be at least 1, got {int(number)}")
    if number > MAX_HISTORY_BARS:
        return MAX_HISTORY_BARS, True
    return int(number), False


def _bars(ctx: BrainContext, symbol: str, limit: int) -> list[Bar]:
    """The last ``limit`` bars that opened before ``ctx.now``. The view already ends at its
    clock; this also guards a view built for a later time than the context's."""
    bars = ctx.history.bars(symbol, limit)
    if bars and bars[-1].time >= ctx.now:
        bars = [b for b in ctx.history.bars(symbol) if b.time < ctx.now][-limit:]
    return bars


# --------------------------------------------------------------------------- the tools


def _price_history(ctx: BrainContext, args: dict[str, Any]) -> str:
    symbol = _symbol(ctx, args)
    count, capped = _bar_count(args.get("bars"))
    bars = _bars(ctx, symbol, count)
    out: dict[str, Any] = {"symbol": symbol, "bars": len(bars)}
    if capped:
        out["note"] = f"bars capped at {MAX_HISTORY_BARS}"
    if bars:
        out["first_time"] = bars[0].time.isoformat()
        out["last_time"] = bars[-1].time.isoformat()
        if len(bars) > 1:
            out["interval_seconds"] = int((bars[-1].time - bars[-2].time).total_seconds())
    out["closes"] = [_num(b.close, 7) for b in bars]
    return _dumps(out)


def _indicator_values(symbol: str, bars: list[Bar]) -> dict[str, Any]:
    array = np.array([float(b.close) for b in bars], dtype=np.float64)
    values = {"rsi14": math.nan, "sma10": math.nan, "sma30": math.nan, "ema10": math.nan}
    if is_clean_series(array):
        values["rsi14"] = float(rsi(array, 14)[-1])
        values["sma10"] = float(sma(array, 10)[-1])
        values["sma30"] = float(sma(array, 30)[-1])
        values["ema10"] = float(ema(array, 10)[-1])
    out: dict[str, Any] = {
        "symbol": symbol,
        "bars_used": len(bars),
        "last_close": _num(bars[-1].close) if bars else None,
    }
    out["rsi14"] = round(values["rsi14"], 1) if math.isfinite(values["rsi14"]) else None
    for key in ("sma10", "sma30", "ema10"):
        out[key] = _num(values[key], 7)
    if any(out[k] is None for k in ("rsi14", "sma10", "sma30", "ema10")):
        out["note"] = "null = not enough data"
    return out


def _indicators(ctx: BrainContext, args: dict[str, Any]) -> str:
    symbol = _symbol(ctx, args)
    return _dumps(_indicator_values(symbol, _bars(ctx, symbol, INDICATOR_BARS)))


def _portfolio(ctx: BrainContext, args: dict[str, Any]) -> str:
    marks = {s: snap.price for s, snap in ctx.prices.items() if is_valid_price(snap.price)}
    wallet = ctx.wallet
    holdings = []
    for symbol, pos in sorted(wallet.positions.items()):
        if not pos.quantity or pos.quantity <= 0:
            continue
        mark = marks.get(symbol)
        holdings.append(
            {
                "symbol": symbol,
                "quantity": _num(pos.quantity, 12),
                "avg_cost": _num(pos.avg_cost),
                "mark": _num(mark),
                "value": _money(pos.value(mark)) if mark is not None else None,
                "unrealized_pnl": _money(pos.unrealized_pnl(mark)) if mark is not None else None,
            }
        )
    return _dumps(
        {
            "time": ctx.now.isoformat(),
            "cash": _money(wallet.cash),
            "equity": _money(wallet.equity(marks)),
            "realized_pnl": _money(wallet.realized_pnl),
            "holdings": holdings,
            "max_buy_quantity": {
                s: _num(ctx.max_buy_quantity[s], 12)
                for s in ctx.symbols
                if s in ctx.max_buy_quantity
            },
            "prices": {s: _num(marks[s]) for s in ctx.symbols if s in marks},
        }
    )


def _place_order(ctx: BrainContext, args: dict[str, Any]) -> ToolOutcome:
    # every argument goes through, so aliases (qty) count and ambiguous sizes (amount) are
    # refused rather than dropped (a dropped size would let risk size the trade all-in)
    outcome = parse_decision(_dumps(args)) if args else None
    if outcome is None or (outcome.decision is None and outcome.payload is None):
        raise ToolError("action is required (buy, sell or hold)")
    if outcome.decision is None:
        raise ToolError(f"invalid order: {outcome.error}")
    decision = outcome.decision
    if decision.action is not Action.HOLD and decision.symbol not in ctx.symbols:
        allowed = ", ".join(ctx.symbols) or "none"
        raise ToolError(f"unknown symbol {decision.symbol!r}; allowed: {allowed}")
    order = {
        "action": decision.action.value,
        "symbol": decision.symbol,
        "quantity": _num(decision.quantity, 12),
        "notional": _money(decision.notional) if decision.notional is not None else None,
    }
    content = _dumps({"ok": True, "order": order, "status": "submitted to the risk checks"})
    return ToolOutcome(content=content, decision=decision)


def _note(ctx: BrainContext, args: dict[str, Any]) -> str:
    text = args.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ToolError("text is required (a short note)")
    (kept,) = remember_notes(ctx.state, [text])
    out: dict[str, Any] = {"ok": True, "notes": len(ctx.state["notes"])}
    if len(kept) < len(" ".join(text.split())):
        out["note"] = f"truncated to {MAX_NOTE_CHARS} characters"
    return _dumps(out)


def run_tool(call: ToolCall, ctx: BrainContext) -> ToolOutcome:
    """Run one tool call against ``ctx``; mistakes come back as ``{"error": ...}``."""
    try:
        if call.name not in TOOL_NAMES:
            raise ToolError(f"unknown tool {call.name[:64]!r}; available: {', '.join(TOOL_NAMES)}")
        if call.arguments_error:
            raise ToolError(f"bad arguments for {call.name}: {call.arguments_error}")
        args = dict(call.arguments or {})
        if call.name == "place_order":
            return _place_order(ctx, args)
        if call.name == "get_price_history":
            return ToolOutcome(_price_history(ctx, args))
        if call.name == "get_indicators":
            return ToolOutcome(_indicators(ctx, args))
        if call.name == "get_portfolio":
            return ToolOutcome(_portfolio(ctx, args))
        return ToolOutcome(_note(ctx, args))
    except ToolError as exc:
        return ToolOutcome(_dumps({"error": str(exc)}), error=str(exc))
    except Exception as exc:  # a bug or odd input must not stop the agent
        message = f"{call.name} failed ({type(exc).__name__})"
        return ToolOutcome(_dumps({"error": message}), error=message)
