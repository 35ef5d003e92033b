"""The messages an LLM brain sends: a system message with the rules and a user message with the
market as the agent may see it at ``ctx.now``.

Everything is text with fixed, line-oriented formats (the exact forms are part of the contract,
tests check them)::

    TIME 2024-01-01T12:00:00+00:00
    WALLET cash=1000.0 equity=1250.0
    HOLDING BTC qty=0.5 avg_cost=27000.1 mark=27500 unrealized_pnl=249.95
    BTC price=27000.5 change_24h=-2.31%
    HISTORY BTC 1m closes (oldest first): 26990 27001.5 ...
    INDICATORS BTC rsi14=41.3 sma10=27010.2 sma30=26950.8 ema10=27002.4
    DECISION 2024-01-01T11:00:00+00:00 buy BTC qty=0.1 price=26900 status=executed reason="..."
    NOTE ...

Numbers are formatted from Decimal (no float repr surprises): prices to 10 significant digits,
quantities to 12, history closes and moving averages to 7, money to at most 2 decimals (at least
one: ``250.0``), percentages to 2 decimals with a sign. Lists are ordered by ``ctx.symbols`` (or
by symbol), never by dict order, so the same input gives the same text.

History and indicators come only from ``ctx.history`` (bars opened before ``ctx.now``); recent
decisions stamped after ``ctx.now`` are left out. Over ``budget_chars`` (system + user text), the
oldest closes, decisions and notes go first (from whichever of the three is longest), then the
indicator lines; the rules, the wallet, the holdings and the prices always stay, even if they
alone exceed the budget.

Missing data is never a silent ``n/a``. The 24h change is the price snapshot's; a feed without
one (Yahoo, or any snapshot lacking it) gets it from the history (the close of the latest bar
opened at or before 24h before the latest bar, as the replay computes it). When the data do not
reach back 24 hours (the very start of a replay), the line says so, and an indicator without
enough bars says how many it needs::

    BTC price=27000.5 change_24h=n/a (only 3h 12m of price history, since
        2023-04-01T21:03:00+00:00; change over it +0.41%)            (one line)
    INDICATORS BTC rsi14=n/a sma10=27010.2 sma30=n/a ema10=27002.4 (12 bars: rsi14 needs 15,
        sma30 needs 30)                                              (one line)
    INDICATORS SOL n/a (no bars yet)
"""

from __future__ import annotations

import decimal
import json
import math
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import numpy as np

from phantomex.brains.base import BrainContext
from phantomex.brains.indicators import ema, is_clean_series, rsi, sma
from phantomex.brains.llm.answer_schema import decision_json_schema
from phantomex.brains.llm.profiles import FULL, PromptProfile
from phantomex.domain.models import Bar, Snapshot
from phantomex.domain.money import is_valid_price

__all__ = ["build_messages", "fmt_money", "fmt_number", "fmt_percent"]

INDICATOR_BARS: Final = 200  # bars the indicators are computed from
MAX_DECISIONS: Final = 50
MAX_NOTES: Final = 50
MAX_GOAL_CHARS: Final = 2000
MAX_NOTE_CHARS: Final = 500
MAX_REASON_CHARS: Final = 200
DAY: Final = timedelta(hours=24)
#: bars each indicator needs for a value (TA-Lib: RSI(14) from the 15th close on)
INDICATOR_NEEDS: Final = {"rsi14": 15, "sma10": 10, "sma30": 30, "ema10": 10}

_ANSWER_TEMPLATE: Final = (
    '{"action": "buy" | "sell" | "hold", "symbol": "<ticker>" or null, '
    '"quantity": <units > 0> or null, "notional": <USD > 0> or null, '
    '"reasoning": "<one or two sentences>", "confidence": <number 0..1>, '
    '"stop_loss": <price> or null, "take_profit": <price> or null}'
)
#: the compact profile's template: sizes and exit prices as the strings the schema enforces
_COMPACT_TEMPLATE: Final = (
    '{"action": "buy" | "sell" | "hold", "symbol": "<ticker>" or null, '
    '"quantity": "<units>" or null, "notional": "<USD>" or null, '
    '"reasoning": "<one sentence>", "confidence": <0.0 to 1.0>}'
)
_EXAMPLE: Final = (
    '{"action": "hold", "symbol": null, "quantity": null, "notional": null, '
    '"reasoning": "No clear trend yet.", "confidence": 0.5}'
)
_CENT: Final = Decimal("0.01")
_WIDE = decimal.Context(prec=200, rounding=decimal.ROUND_HALF_EVEN, traps=[])


# --------------------------------------------------------------------------- number formats


def _as_decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, Decimal):
            result = value
        elif isinstance(value, float):
            result = Decimal(repr(value))
        elif isinstance(value, int | str):
            result = Decimal(value)
        else:
            return None
    except (decimal.InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def _plain(value: Decimal) -> str:
    text = format(value.normalize(_WIDE), "f")
    return "0" if text in ("-0", "0") else text


def fmt_number(value: object, digits: int = 10) -> str:
    """``value`` rounded to ``digits`` significant digits, plain notation, no trailing zeros:
    27000.5, 27500, 0.000123; ``n/a`` when missing or not finite."""
    number = _as_decimal(value)
    if number is None:
        return "n/a"
    if number.is_zero():
        return "0"
    rounded = decimal.Context(prec=digits, rounding=decimal.ROUND_HALF_EVEN, traps=[]).plus(number)
    return _plain(rounded)


def fmt_number_down(value: object, digits: int) -> str:
    """``value`` rounded *down* to ``digits`` significant digits (a limit a model may copy:
    the copy stays within it): 0.0123456 → 0.0123 with 3."""
    number = _as_decimal(value)
    if number is None:
        return "n/a"
    if number.is_zero():
        return "0"
    return _plain(decimal.Context(prec=digits, rounding=decimal.ROUND_DOWN, traps=[]).plus(number))


def fmt_money(value: object) -> str:
    """Rounded to cents, trailing zeros dropped but one decimal kept: 250.0, 249.95, -12.5."""
    number = _as_decimal(value)
    if number is None:
        return "n/a"
    text = format(number.quantize(_CENT, context=_WIDE), "f")
    text = text.rstrip("0")
    if text.endswith("."):
        text += "0"
    return "0.0" if text == "-0.0" else text


def fmt_percent(value: object) -> str:
    """Two decimals with a sign: -2.31%, +0.50%; ``n/a`` when missing."""
    number = _as_decimal(value)
    if number is None:
        return "n/a"
    text = format(number.quantize(_CENT, context=_WIDE), "+f")
    return ("+0.00" if text == "-0.00" else text) + "%"


def _float_number(value: float, digits: int = 7) -> str:
    return fmt_number(value, digits) if math.isfinite(value) else "n/a"


def _one_line(text: object, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _iso(value: datetime) -> str:
    return value.isoformat()


def _duration(span: timedelta) -> str:
    """``3h 12m``, ``45m``, ``30s``."""
    seconds = max(0, int(span.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    if hours:
        return f"{hours}h {rest // 60}m"
    return f"{rest // 60}m" if rest >= 60 else f"{rest}s"


def _change_24h(ctx: BrainContext, symbol: str, snap: Snapshot | None) -> str:
    """The 24h change of ``symbol``: the snapshot's, else from the history, else why not."""
    if snap is not None and snap.change_24h_pct is not None:
        return fmt_percent(snap.change_24h_pct)
    if snap is None or not is_valid_price(snap.price):
        return "n/a"  # the price itself is n/a on the same line
    bars = _bars(ctx, symbol, None)
    if not bars:
        return "n/a (no price history yet)"
    times = [b.time for b in bars]
    at = bisect_right(times, bars[-1].time - DAY) - 1
    if at >= 0 and is_valid_price(bars[at].close):
        return fmt_percent((snap.price / bars[at].close - 1) * 100)
    first = bars[0]
    since = (
        fmt_percent((snap.price / first.close - 1) * 100) if is_valid_price(first.close) else None
    )
    return (
        f"n/a (only {_duration(ctx.now - first.time)} of price history, since "
        f"{_iso(first.time)}" + (f"; change over it {since})" if since else ")")
    )


def _interval(bars: list[Bar]) -> str:
    if len(bars) < 2:
        return "bar"
    seconds = int((bars[-1].time - bars[-2].time).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s" if seconds > 0 else "bar"


# --------------------------------------------------------------------------- sections


@dataclass(slots=True)
class _History:
    symbol: str
    interval: str
    closes: list[str]

    def line(self) -> str:
        return f"HISTORY {self.symbol} {self.interval} closes (oldest first): " + " ".join(
            self.closes
        )


@dataclass(slots=True)
class _Parts:
    system: str
    head: list[str]  # goal, time, wallet, holdings, prices: never dropped
    history: list[_History] = field(default_factory=list)
    indicators: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    news: str | None = None  # the news digest (brains/llm/news.py), already within its budget
    decisions_title: str = "YOUR RECENT DECISIONS (oldest first)"

    def user(self) -> str:
        lines = list(self.head)
        history = [h for h in self.history if h.closes]
        if history:
            lines.append("")
            lines.append("RECENT PRICE HISTORY")
            lines.extend(h.line() for h in history)
        if self.indicators:
            lines.append("")
            lines.append("INDICATORS (from bars up to now; n/a = not enough data)")
            lines.extend(self.indicators)
        if self.decisions:
            lines.append("")
            lines.append(self.decisions_title)
            lines.extend(self.decisions)
        if self.notes:
            lines.append("")
            lines.append("YOUR NOTES (oldest first)")
            lines.extend(self.notes)
        if self.news:
            lines += ["", self.news]
        lines.append("")
        lines.append("Decide now. Reply with one JSON object only.")
        return "\n".join(lines)

    def size(self) -> int:
        return len(self.system) + len(self.user())

    def drop_one(self) -> bool:
        """Drop the oldest item of the category (history closes, decisions, notes) that takes
        the most characters (ties: decisions, notes, history); the indicator lines go only when
        those are empty. False when nothing droppable is left."""
        sizes = {
            "decisions": sum(len(line) + 1 for line in self.decisions),
            "notes": sum(len(line) + 1 for line in self.notes),
            "history": sum(len(c) + 1 for h in self.history for c in h.closes),
        }
        kind = max(sizes, key=lambda k: sizes[k])  # first of equal maxima wins
        if sizes[kind] > 0:
            if kind == "decisions":
                del self.decisions[0]
            elif kind == "notes":
                del self.notes[0]
            else:
                longest = max(self.history, key=lambda h: len(h.closes))
                del longest.closes[0]
            return True
        if self.indicators:
            self.indicators.pop()
            return True
        return False


def _symbols(ctx: BrainContext) -> list[str]:
    return list(dict.fromkeys(str(s) for s in ctx.symbols))


def _system(
    ctx: BrainContext, symbols: list[str], mode_prompt_json: bool, profile: PromptProfile
) -> str:
    lines = [
        f"You are the trading agent {_one_line(ctx.agent_name, 100)}, managing a "
        "paper-trading wallet (spot, long-only, no leverage). Each turn you get the market as it "
        "is now and decide ONE action.",
        "",
        "RULES",
        "- Allowed actions: buy, sell, hold.",
        f"- Allowed symbols: {', '.join(symbols) if symbols else 'none'}. "
        "Any other symbol is rejected.",
        "- Long-only spot: you can only sell what you hold (see the HOLDING lines); "
        "no shorting, no borrowing.",
        '- Size a trade with "quantity" (units of the asset) or "notional" (USD), or set both '
        "to null to let the risk engine size it (buy: as much as allowed; sell: the whole "
        "position).",
    ]
    limits = [
        f"{s} {fmt_number_down(ctx.max_buy_quantity[s], profile.limit_digits)}"
        for s in symbols
        if s in ctx.max_buy_quantity
    ]
    if limits:
        lines.append(
            "- Max buy quantity right now (larger buys are cut or rejected): "
            + ", ".join(limits)
            + "."
        )
    lines += [
        "- Every trade pays fees and slippage; hold is a valid decision.",
        "- Use only the data given below; the PRICES are the current market.",
        "",
        "ANSWER with ONE JSON object and nothing else (no prose, no markdown fences):",
        _COMPACT_TEMPLATE if profile.example else _ANSWER_TEMPLATE,
        "buy and sell need a symbol; hold needs no size.",
    ]
    if profile.example:
        lines += ["Example answer:", _EXAMPLE]
    if mode_prompt_json:
        schema = json.dumps(decision_json_schema(symbols or None), separators=(",", ":"))
        lines += ["", "JSON schema of the answer:", schema]
    return "\n".join(lines)


def _head(ctx: BrainContext, goal: str, symbols: list[str], profile: PromptProfile) -> list[str]:
    marks = {s: snap.price for s, snap in sorted(ctx.prices.items()) if is_valid_price(snap.price)}
    wallet = ctx.wallet
    goal_text = (goal or ctx.goal or "").strip()
    if len(goal_text) > MAX_GOAL_CHARS:
        goal_text = goal_text[: MAX_GOAL_CHARS - 1].rstrip() + "…"
    lines = [
        f"GOAL: {goal_text or 'grow the wallet without large drawdowns'}",
        "",
        f"TIME {_iso(ctx.now)}",
        f"WALLET cash={fmt_money(wallet.cash)} equity={fmt_money(wallet.equity(marks))}",
    ]
    holdings = [
        p for _, p in sorted(wallet.positions.items()) if _as_decimal(p.quantity) and p.quantity > 0
    ]
    for pos in holdings:
        mark = marks.get(pos.symbol)
        pnl = fmt_money(pos.unrealized_pnl(mark)) if mark is not None else "n/a"
        lines.append(
            f"HOLDING {pos.symbol} qty={fmt_number_down(pos.quantity, profile.limit_digits)} "
            f"avg_cost={fmt_number(pos.avg_cost, profile.price_digits)} "
            f"mark={fmt_number(mark, profile.price_digits)} unrealized_pnl={pnl}"
        )
    if not holdings:
        lines.append("HOLDING none")
    lines += ["", "PRICES"]
    for symbol in symbols:
        snap = ctx.prices.get(symbol)
        valid = snap is not None and is_valid_price(snap.price)
        price = fmt_number(snap.price, profile.price_digits) if snap and valid else "n/a"
        lines.append(f"{symbol} price={price} change_24h={_change_24h(ctx, symbol, snap)}")
    return lines


def _bars(ctx: BrainContext, symbol: str, limit: int | None) -> list[Bar]:
    # the view already ends at its clock; the filter also guards a view built for a later time
    return [b for b in ctx.history.bars(symbol, limit) if b.time < ctx.now]


def _indicators(symbol: str, bars: list[Bar], digits: int = 7) -> str:
    """The indicator line; what is n/a is said, with the bars it needs."""
    if not bars:
        return f"INDICATORS {symbol} n/a (no bars yet)"
    closes = [float(b.close) for b in bars]
    values = dict.fromkeys(INDICATOR_NEEDS, math.nan)
    array = np.array(closes, dtype=np.float64)
    clean = is_clean_series(array)
    if clean:
        values["rsi14"] = float(rsi(array, 14)[-1])
        values["sma10"] = float(sma(array, 10)[-1])
        values["sma30"] = float(sma(array, 30)[-1])
        values["ema10"] = float(ema(array, 10)[-1])
    rsi_text = f"{values['rsi14']:.1f}" if math.isfinite(values["rsi14"]) else "n/a"
    rest = " ".join(f"{k}={_float_number(values[k], digits)}" for k in ("sma10", "sma30", "ema10"))
    line = f"INDICATORS {symbol} rsi14={rsi_text} {rest}"
    short = [f"{k} needs {n}" for k, n in INDICATOR_NEEDS.items() if len(bars) < n]
    if not clean:
        return f"{line} (the closes include unusable prices)"
    if short:
        return f"{line} ({len(bars)} bar{'s' if len(bars) != 1 else ''}: {', '.join(short)})"
    return line


def _when(value: object, tz_aware: bool) -> datetime | None:
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if tz_aware and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    elif not tz_aware and when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def _decision_lines(
    ctx: BrainContext, recent: list[dict[str, Any]], profile: PromptProfile = FULL
) -> list[str]:
    aware = ctx.now.tzinfo is not None
    rows: list[tuple[datetime | None, dict[str, Any]]] = []
    for item in recent:
        if not isinstance(item, dict):
            continue
        when = _when(item.get("time"), aware)
        if when is not None and when > ctx.now:
            continue  # never show the model anything stamped after its clock
        rows.append((when, item))
    if rows and all(when is not None for when, _ in rows):
        rows.sort(key=lambda row: row[0] or ctx.now)  # chronological, stable for equal times
    lines: list[str] = []
    for when, item in rows[-MAX_DECISIONS:]:
        label = "OUTCOME" if profile.outcomes else "DECISION"
        parts = [label, _iso(when) if when is not None else "time=n/a"]
        parts.append(_one_line(item.get("action") or "n/a", 20))
        if item.get("symbol"):
            parts.append(_one_line(item["symbol"], 32))
        if item.get("quantity") is not None:
            parts.append(f"qty={fmt_number(item['quantity'], profile.limit_digits)}")
        if item.get("price") is not None:
            parts.append(f"price={fmt_number(item['price'], profile.price_digits)}")
        if item.get("status"):
            parts.append(f"status={_one_line(item['status'], 32)}")
        if item.get("reason") and not profile.outcomes:
            parts.append(f"reason={json.dumps(_one_line(item['reason'], MAX_REASON_CHARS))}")
        lines.append(" ".join(parts))
    return lines


def build_messages(
    ctx: BrainContext,
    *,
    goal: str,
    recent_decisions: list[dict[str, Any]],
    notes: list[str],
    budget_chars: int = 12000,
    mode_prompt_json: bool,
    news: str | None = None,
    profile: PromptProfile = FULL,
) -> list[dict[str, Any]]:
    """``[system, user]`` chat messages for one decision (see the module docstring).

    ``recent_decisions``: dicts with ``time``, ``action``, ``symbol``, ``status``, ``reason``,
    ``price`` (and optionally ``quantity``), in any order (sorted by time when every one has
    one). ``notes``: the agent's reflections, oldest first. ``mode_prompt_json``: the answer
    format is only enforced by the prompt, so the full JSON schema is included (never in the
    compact ``profile``: its template and example say it in fewer words). ``news``: the agent's
    news digest (:func:`phantomex.brains.llm.news.digest`), shown before the last line."""
    symbols = _symbols(ctx)
    parts = _Parts(
        system=_system(ctx, symbols, mode_prompt_json and not profile.example, profile),
        head=_head(ctx, goal, symbols, profile),
    )
    if profile.outcomes:
        parts.decisions_title = "OUTCOMES OF YOUR PAST DECISIONS (facts, oldest first)"
    history_bars = profile.history_bars
    parts.news = news
    for symbol in symbols:
        bars = _bars(ctx, symbol, max(INDICATOR_BARS, history_bars))
        shown = bars[-history_bars:] if history_bars > 0 else []
        if shown:
            parts.history.append(
                _History(
                    symbol,
                    _interval(shown),
                    [fmt_number(b.close, profile.close_digits) for b in shown],
                )
            )
        parts.indicators.append(_indicators(symbol, bars, profile.close_digits))
    parts.decisions = _decision_lines(ctx, list(recent_decisions or []), profile)
    parts.notes = [
        f"NOTE {_one_line(note, MAX_NOTE_CHARS)}"
        for note in list(notes or [])[-MAX_NOTES:]
        if str(note).strip()
    ]
    while parts.size() > budget_chars and parts.drop_one():
        pass
    return [
        {"role": "system", "content": parts.system},
        {"role": "user", "content": parts.user()},
    ]
