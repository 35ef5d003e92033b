"""The simulator's deterministic "model": reads market lines from the prompt and decides.

No I/O here. The LLM brain's prompt carries lines such as::

    BTC price=27000.5 change_24h=-2.31%
    HOLDING ETH qty=2

(or the same data as JSON). The simulated model buys the symbol with the most negative 24 h
change below its buy threshold, else sells a holding whose change is above its sell threshold,
else holds. Thresholds vary a little per model name (a stable hash), so several simulated models
behave differently on the same prompt.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

_PRICE = re.compile(r"\bprice\s*[=:]\s*\$?\s*([-+]?[\d,]*\.?\d+(?:[eE][-+]?\d+)?)", re.I)
_CHANGE = re.compile(
    r"\b(?:change_?24h|24h_?change|change_24h_pct|change)\s*[=:]\s*([-+]?\d*\.?\d+)\s*%?", re.I
)
_SYMBOL_KV = re.compile(r"\bsymbol\s*[=:]\s*['\"]?([A-Za-z0-9][\w.\-/]*)", re.I)
_TOKEN = re.compile(r"[A-Za-z][\w.\-/]*")
_HOLDING = re.compile(
    r"\bHOLDING\s+([A-Za-z0-9][\w.\-/]*)\s*[:,]?\s*(?:qty|quantity)\s*[=:]\s*([-+]?\d*\.?\d+)",
    re.I,
)
_HISTORY = re.compile(r"\s*(DECISION|TRADE|ORDER|FILL)\b", re.I)  # past actions, not quotes
_CHANGE_KEYS = ("change_24h", "change_24h_pct", "change24h", "price_change_percentage_24h")
_QTY_KEYS = ("qty", "quantity", "amount", "size")
_MAX_JSON_ATTEMPTS = 200


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    price: float | None
    change_24h: float | None


@dataclass(slots=True)
class MarketView:
    quotes: dict[str, Quote] = field(default_factory=dict)
    holdings: dict[str, float] = field(default_factory=dict)


def thresholds(model: str) -> tuple[float, float]:
    """(buy_below, sell_above) in percent for a model name: buy_below in [-2.0, -0.75] and
    sell_above in [0.75, 2.0], steps of 0.25, from a stable hash of the name."""
    h = zlib.crc32(model.encode("utf-8"))
    return -(0.75 + (h % 6) * 0.25), 0.75 + ((h >> 8) % 6) * 0.25


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().rstrip("%").replace(",", ""))
        except ValueError:
            return None
    return None


def _json_values(text: str) -> list[Any]:
    """Every top-level JSON object/array embedded in ``text`` (best effort)."""
    decoder = json.JSONDecoder()
    out: list[Any] = []
    i, attempts = 0, 0
    while i < len(text) and attempts < _MAX_JSON_ATTEMPTS:
        starts = [p for p in (text.find("{", i), text.find("[", i)) if p >= 0]
        if not starts:
            break
        pos = min(starts)
        attempts += 1
        try:
            value, end = decoder.raw_decode(text, pos)
        except ValueError:
            i = pos + 1
            continue
        out.append(value)
        i = end
    return out


def _walk_json(value: Any, view: MarketView, in_holdings: bool = False) -> None:
    if isinstance(value, list):
        for item in value:
            _walk_json(item, view, in_holdings)
        return
    if not isinstance(value, dict):
        return
    symbol = value.get("symbol")
    if isinstance(symbol, str) and symbol:
        qty = next((_num(value[k]) for k in _QTY_KEYS if k in value), None)
        if in_holdings and qty is not None:
            view.holdings[symbol] = qty
        change = next((_num(value[k]) for k in _CHANGE_KEYS if k in value), None)
        if change is not None or "price" in value:
            view.quotes[symbol] = Quote(symbol, _num(value.get("price")), change)
    for key, sub in value.items():
        key_l = str(key).lower()
        if key_l in ("holdings", "positions", "portfolio"):
            if isinstance(sub, dict) and all(not isinstance(v, dict | list) for v in sub.values()):
                for sym, qty in sub.items():  # {"BTC": 0.5}
                    q = _num(qty)
                    if q is not None:
                        view.holdings[str(sym)] = q
            else:
                _walk_json(sub, view, True)
        elif isinstance(sub, dict) and "symbol" not in sub and any(k in sub for k in _CHANGE_KEYS):
            change = next((_num(sub[k]) for k in _CHANGE_KEYS if k in sub), None)
            view.quotes[str(key)] = Quote(
                str(key), _num(sub.get("price")), change
            )  # {"BTC": {...}}
        elif isinstance(sub, dict | list):
            _walk_json(sub, view, in_holdings)


def parse_market(text: str, view: MarketView | None = None) -> MarketView:
    """Quotes and holdings in ``text`` (text lines and embedded JSON), merged into ``view``."""
    view = view or MarketView()
    for value in _json_values(text):
        _walk_json(value, view)
    for line in text.splitlines():
        for m in _HOLDING.finditer(line):
            qty = _num(m.group(2))
            if qty is not None:
                view.holdings[m.group(1)] = qty
        pm = _PRICE.search(line)
        if not pm or _HOLDING.search(line) or _HISTORY.match(line):
            continue
        sk = _SYMBOL_KV.search(line)
        if sk:
            symbol = sk.group(1)
        else:  # the last word before "price=" that is not itself a key (qty=...)
            prefix = line[: pm.start()]
            tokens = [m.group(0) for m in _TOKEN.finditer(prefix) if prefix[m.end() :][:1] != "="]
            if not tokens:
                continue
            symbol = tokens[-1]
        cm = _CHANGE.search(line)
        change = _num(cm.group(1)) if cm else None
        if change is None and symbol in view.quotes:
            continue  # don't lose a known 24h change to a line without one
        view.quotes[symbol] = Quote(symbol, _num(pm.group(1)), change)
    return view


def decide(
    model: str, view: MarketView, limits: tuple[float, float] | None = None
) -> dict[str, Any]:
    """The decision JSON the simulated ``model`` answers for ``view`` (``limits`` overrides
    the name-derived ``thresholds``)."""
    buy_below, sell_above = limits or thresholds(model)
    dated = [q for q in view.quotes.values() if q.change_24h is not None]
    losers = sorted(
        (q for q in dated if q.change_24h is not None and q.change_24h < buy_below),
        key=lambda q: q.change_24h or 0.0,
    )
    if losers:
        q = losers[0]
        ch = q.change_24h or 0.0
        return _decision(
            "buy",
            q.symbol,
            f"{q.symbol} moved {ch:+.2f}% in 24h, below my buy threshold of {buy_below:+.2f}%: "
            "buying the dip.",
            ch,
        )
    winners = sorted(
        (
            q
            for q in dated
            if view.holdings.get(q.symbol, 0) > 0
            and q.change_24h is not None
            and q.change_24h > sell_above
        ),
        key=lambda q: -(q.change_24h or 0.0),
    )
    if winners:
        q = winners[0]
        ch = q.change_24h or 0.0
        return _decision(
            "sell",
            q.symbol,
            f"{q.symbol} is held and moved {ch:+.2f}% in 24h, above my sell threshold of "
            f"{sell_above:+.2f}%: taking profit.",
            ch,
        )
    if not view.quotes:
        return _decision("hold", None, "No market data in the prompt: holding.", 0.0)
    return _decision(
        "hold",
        None,
        f"No 24h move beyond my thresholds ({buy_below:+.2f}% / {sell_above:+.2f}%): holding.",
        0.0,
    )


def _decision(action: str, symbol: str | None, reasoning: str, change: float) -> dict[str, Any]:
    confidence = round(min(0.95, 0.5 + abs(change) / 10), 2)
    return {
        "action": action,
        "symbol": symbol,
        "quantity": None,
        "notional": None,
        "reasoning": reasoning,
        "confidence": confidence,
    }


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def default_reply(
    model: str, messages: list[dict[str, Any]], limits: tuple[float, float] | None = None
) -> dict[str, Any]:
    """Decision for the last user message; holdings are also read from tool results. A request
    for lessons (an agent's reflection) gets lessons instead."""
    system = next(
        (_text_of(m) for m in messages if isinstance(m, dict) and m.get("role") == "system"), ""
    )
    if '"lessons"' in system:
        buy, sell = limits or thresholds(model)
        return {
            "lessons": [
                f"Buy only after a 24h drop beyond {buy:+.2f}%; smaller dips kept reverting.",
                f"Take profits once the 24h change passes {sell:+.2f}% instead of waiting.",
            ]
        }
    view = MarketView()
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "tool":
            parse_market(_text_of(m), view)
    last_user = next(
        (m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None
    )
    if last_user is not None:
        parse_market(_text_of(last_user), view)
    return decide(model, view, limits)


def wants_tool(messages: list[dict[str, Any]], tools: list[Any] | None, name: str) -> bool:
    """True when tool ``name`` is offered and no tool result is in the conversation yet."""
    if not tools:
        return False
    offered = {(t.get("function") or {}).get("name") for t in tools if isinstance(t, dict)} | {
        t.get("name") for t in tools if isinstance(t, dict)
    }
    if name not in offered:
        return False
    return not any(isinstance(m, dict) and m.get("role") == "tool" for m in messages)


def estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)
