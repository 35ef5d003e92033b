"""The decision an LLM answers with: a lenient-in, strict-out pydantic model and its JSON schema.

Models answer in many small dialects, so :class:`LLMDecision` accepts what is unambiguous and
rejects what is not, with an error that names the field (quoted back to the model in one repair
round trip). What it accepts, and why:

* **Keys** are matched case-insensitively with spaces/hyphens read as underscores (``"Action"``,
  ``"stop-loss"``), plus a few unambiguous aliases (``side``→action, ``ticker``/``asset``/``coin``
  →symbol, ``qty``/``amount``→quantity, ``notional_usd``/``usd``→notional, ``reason``/
  ``rationale``→reasoning). Unknown keys are ignored and recorded in ``ignored_keys``.
* **A field given twice** (a repeated JSON key, or ``action`` next to its alias ``side``): the
  model's own field name wins over an alias, else the first occurrence, with a warning. Two
  *different* values for what is traded (``action``; for buy/sell also ``symbol``,
  ``quantity``, ``notional``) are an error instead: ``{"action": "buy", "action": "sell"}`` has
  no right reading, and the usual JSON rule (the last one wins, silently) would trade on a guess.
  A repeat of the other fields (reasoning, confidence, exit prices) cannot change the trade, so
  it is only a warning.
* **action**: ``buy``/``sell``/``hold`` in any case with surrounding whitespace. Synonyms such as
  ``long``, ``short``, ``accumulate``, ``wait`` are **rejected**: "short" is not a sell on a
  long-only account, and guessing intent is how a paper bot loses a real user's trust.
* **symbol**: stripped, upper-cased, a leading ``$`` removed; a pair with a known quote currency
  (``BTC/USDT``, ``btc-usd``) becomes its base (``BTC``), other hyphens stay (``BRK-B``).
  ``"none"``/``"null"``/``"n/a"``/``""`` mean no symbol. Whether the symbol is tradable is not
  checked here: risk rejects unknown symbols later.
* **quantity / notional / stop_loss / take_profit**: JSON numbers or numeric strings (``"0.5"``,
  ``"$1,000.50"`` with well-formed thousands groups, ``"null"``). Anything else (``"all"``,
  ``"1,5"``, booleans), NaN/Infinity, zero, negatives and absurd sizes (quantity > 1e15, notional
  or prices > 1e12) are errors, except a zero size next to the other size (``"quantity": 0.5,
  "notional": 0``): read as null, with a warning. ``null`` for both sizes lets risk size it.
* **confidence**: 0-1; a percent string (``"85%"``) or a bare number in (1, 100] (``85``, ``7``) is
  read as a percentage (0.85, 0.07) with a warning; negatives, > 100 or non-numbers are errors.
* **reasoning**: any text (lists are joined); longer than 4000 characters is truncated, not
  rejected.
* **hold** ignores sizes and prices (dropped with a warning, even when they are garbage) and an
  unusable symbol; **buy/sell** require a symbol.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from phantomex.domain.models import Action, Decision
from phantomex.domain.money import MAX_PRICE

__all__ = [
    "MAX_NOTIONAL",
    "MAX_PRICE",
    "MAX_QUANTITY",
    "MAX_REASONING_CHARS",
    "MIN_AMOUNT",
    "DuplicateKeys",
    "LLMDecision",
    "has_action_key",
    "normalize_key",
    "to_decision",
]

MAX_QUANTITY: Final = Decimal("1e15")
MAX_NOTIONAL: Final = Decimal("1e12")
MIN_AMOUNT: Final = Decimal("1e-18")  # below this a size or price is noise (or an exploit)
MAX_REASONING_CHARS: Final = 4000
MAX_SYMBOL_CHARS: Final = 32

FIELDS: Final = (
    "action",
    "symbol",
    "quantity",
    "notional",
    "reasoning",
    "confidence",
    "stop_loss",
    "take_profit",
)
SIZE_FIELDS: Final = ("quantity", "notional", "stop_loss", "take_profit")
#: fields that decide what is traded: two different values for one of them are refused
TRADE_FIELDS: Final = ("action", "symbol", "quantity", "notional")

KEY_ALIASES: Final[dict[str, str]] = {
    "side": "action",
    "decision": "action",  # only when its value is a string (see _canonical_items)
    "ticker": "symbol",
    "asset": "symbol",
    "coin": "symbol",
    "qty": "quantity",
    "notional_usd": "notional",
    "usd": "notional",
    "amount_usd": "notional",
    "usd_amount": "notional",
    "reason": "reasoning",
    "rationale": "reasoning",
    "explanation": "reasoning",
    "stop": "stop_loss",
    "stoploss": "stop_loss",
    "sl": "stop_loss",
    "takeprofit": "take_profit",
    "target": "take_profit",
    "tp": "take_profit",
}

QUOTE_CURRENCIES: Final = frozenset(
    {"USD", "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "UST", "EUR", "PERP"}
)
# size keys whose unit (asset units or USD?) is unknown: rejected rather than ignored, because an
# ignored size with no other size would let risk size the trade all-in
AMBIGUOUS_SIZE_KEYS: Final = frozenset({"amount", "size", "value", "position_size", "units"})
NULL_WORDS: Final = frozenset({"", "null", "none", "n/a", "na", "nil", "-"})

_SYMBOL_RE: Final = re.compile(r"[A-Z0-9][A-Z0-9._\-]*", re.ASCII)
_NUMBER_RE: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_GROUPED_RE: Final = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", re.ASCII)
_KEY_SEP_RE: Final = re.compile(r"[\s\-]+")


class DuplicateKeys(dict[str, Any]):
    """A JSON object that repeats a key: each key's *first* value, with every ``(key, value)``
    pair in document order in ``pairs`` (so :class:`LLMDecision` sees the repeats)."""

    pairs: list[tuple[str, Any]]


def json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for :func:`json.loads`: a plain dict, or :class:`DuplicateKeys`
    when a key repeats (where ``json`` itself would keep the last value without a word)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    if len(out) == len(pairs):
        return out
    repeated = DuplicateKeys(out)
    repeated.pairs = list(pairs)
    return repeated


def key_value_pairs(data: dict[Any, Any]) -> list[tuple[Any, Any]]:
    """Every ``(key, value)`` of ``data``, repeats included (see :class:`DuplicateKeys`)."""
    return list(data.pairs) if isinstance(data, DuplicateKeys) else list(data.items())


def normalize_key(key: object) -> str:
    """``"Stop-Loss "`` → ``"stop_loss"``; aliases are not applied here."""
    return _KEY_SEP_RE.sub("_", str(key).strip()).lower()


def _canonical_key(key: object, value: object) -> str:
    name = normalize_key(key)
    if name in FIELDS:
        return name
    alias = KEY_ALIASES.get(name)
    if alias == "action" and name == "decision" and not isinstance(value, str):
        return name  # {"decision": {...}} is a wrapper, not an action
    return alias or name


def has_action_key(data: dict[Any, Any]) -> bool:
    """True when ``data`` has a key that :class:`LLMDecision` reads as the action."""
    return any(_canonical_key(k, v) == "action" for k, v in key_value_pairs(data))


def _short(value: object, limit: int = 40) -> str:
    text = str(value) if isinstance(value, Decimal | int | float) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_number(value: object) -> Decimal:
    """A Decimal from a JSON-ish number; raises ValueError with a short, quotable message."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, not a boolean ({value!r})")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value)) if math.isfinite(value) else Decimal(str(value))
    elif isinstance(value, str):
        text = value.strip().replace("\u2212", "-")  # unicode minus
        if text.startswith("$"):
            text = text[1:].strip()
        if _GROUPED_RE.fullmatch(text):
            text = text.replace(",", "")
        if text.lower() in {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "-infinity"}:
            raise ValueError(f"must be a finite number (got {_short(value)})")
        if not _NUMBER_RE.fullmatch(text):
            raise ValueError(f"must be a number or null (got {_short(value)})")
        try:
            result = Decimal(text)
        except (InvalidOperation, ValueError) as exc:  # pragma: no cover - regex guards it
            raise ValueError(f"must be a number or null (got {_short(value)})") from exc
    else:
        raise ValueError(f"must be a number or null (got {_short(value)})")
    if not result.is_finite():
        raise ValueError(f"must be a finite number (got {_short(value)})")
    return result


def _is_null_word(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in NULL_WORDS)


def _is_zero(value: object) -> bool:
    """A size of exactly zero (``0``, ``"0.0"``): next to the other size it means "not this
    one", as models often write it."""
    try:
        return not _is_null_word(value) and _parse_number(value).is_zero()
    except ValueError:
        return False


def _positive(value: object, maximum: Decimal, what: str) -> Decimal | None:
    if _is_null_word(value):
        return None
    number = _parse_number(value)
    if number <= 0:
        raise ValueError(f"must be greater than 0 (got {_short(value)}); {what}")
    if number < MIN_AMOUNT:
        raise ValueError(f"is too small (got {_short(value)})")
    if number > maximum:
        raise ValueError(f"is too large (got {_short(value)}, max {maximum:.0e})")
    return number


def _normalize_symbol(value: object) -> str | None:
    if _is_null_word(value):
        return None
    if not isinstance(value, str):
        raise ValueError(f"must be a ticker string like 'BTC' (got {_short(value)})")
    text = value.strip().upper()
    if text.startswith("$"):
        text = text[1:].strip()
    for sep in ("/", "-", "_", ":"):
        if sep in text:
            base, _, quote = text.partition(sep)
            if quote.strip() in QUOTE_CURRENCIES and base.strip():
                text = base.strip()
                break
    if len(text) > MAX_SYMBOL_CHARS or not _SYMBOL_RE.fullmatch(text):
        raise ValueError(f"must be a ticker like 'BTC' (got {_short(value)})")
    return text


def _same_value(key: str, value: object) -> object:
    """What decides whether two values of field ``key`` mean the same (``"BTC"`` and
    ``"btc/usdt"``, ``0.5`` and ``"0.50"``); the text of the value when it is not usable."""
    try:
        if key == "action" and isinstance(value, str):
            return value.strip().lower()
        if key == "symbol":
            return _normalize_symbol(value)
        if key in SIZE_FIELDS:
            return None if _is_null_word(value) else _parse_number(value)
    except ValueError:
        pass
    return json.dumps(value, default=str, sort_keys=True)


def _repeat(key: str, given: list[tuple[str, Any]], *, refuse: bool) -> str:
    """The warning for a field given more than once; ValueError when the values conflict on a
    field that decides the trade (``refuse``: the action, or any trade field of a buy/sell)."""
    names = ", ".join(repr(original) for original, _ in given)
    if len({_same_value(key, value) for _, value in given}) == 1:
        return f"{key} given {len(given)} times ({names}), with the same value"
    if refuse and key in TRADE_FIELDS:
        values = " vs ".join(_short(value) for _, value in given[:3])
        raise ValueError(
            f"{key} is given {len(given)} times with different values ({values}); give one {key}"
        )
    return f"{key} given {len(given)} times ({names}); used the first, {_short(given[0][1])}"


def _is_hold(action: object) -> bool:
    return isinstance(action, str) and action.strip().lower() == "hold"


def _confidence(value: object, warnings: list[str]) -> float | None:
    """0-1; percentages ("85%", or a bare 1 < x <= 100) are divided by 100 with a warning."""
    if _is_null_word(value):
        return None
    percent = False
    raw = value
    if isinstance(value, str) and value.strip().endswith("%"):
        percent = True
        raw = value.strip()[:-1]
    try:
        number = _parse_number(raw)
    except ValueError as exc:
        raise ValueError(f"must be a number between 0 and 1 (got {_short(value)})") from exc
    if percent or Decimal(1) < number <= Decimal(100):
        if not Decimal(0) <= number <= Decimal(100):
            raise ValueError(f"must be between 0 and 1 (got {_short(value)})")
        warnings.append(f"confidence {_short(value)} read as a percentage")
        number = number / Decimal(100)
    if not Decimal(0) <= number <= Decimal(1):
        raise ValueError(f"must be between 0 and 1 (got {_short(value)})")
    return float(number)


def _reasoning(value: object, warnings: list[str]) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, list | tuple):
        text = " ".join(str(item) for item in value)
    elif isinstance(value, dict):
        text = json.dumps(value, default=str, ensure_ascii=False)
    else:
        text = str(value)
    text = text.strip()
    if len(text) > MAX_REASONING_CHARS:
        warnings.append(f"reasoning truncated from {len(text)} to {MAX_REASONING_CHARS} chars")
        text = text[: MAX_REASONING_CHARS - 1].rstrip() + "…"
    return text


class LLMDecision(BaseModel):
    """One trading decision as an LLM states it (see the module docstring for the rules)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    action: Action
    symbol: str | None = None
    quantity: Decimal | None = None
    notional: Decimal | None = None
    reasoning: str = ""
    confidence: float | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    ignored_keys: list[str] = Field(default_factory=list, exclude=True)
    parse_warnings: list[str] = Field(default_factory=list, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        values: dict[str, Any] = {}
        ignored: list[str] = []
        warnings: list[str] = []
        repeats: dict[str, list[tuple[str, Any]]] = {}
        # canonical keys win over aliases, first occurrence wins among equals
        items = sorted(
            ((str(k), _canonical_key(k, v), v) for k, v in key_value_pairs(data)),
            key=lambda item: 0 if normalize_key(item[0]) in FIELDS else 1,
        )
        for original, key, value in items:
            if key not in FIELDS:
                ignored.append(original)
            elif key in values:
                repeats[key].append((original, value))
            else:
                values[key] = value
                repeats[key] = [(original, value)]
        hold = _is_hold(values.get("action"))
        for size, other in (("notional", "quantity"), ("quantity", "notional")):
            if _is_zero(values.get(size)) and not _is_null_word(values.get(other)):
                warnings.append(f"{size} 0 next to a {other} read as null")
                values[size] = None
        for key, given in repeats.items():
            if len(given) > 1:
                warnings.append(_repeat(key, given, refuse=key == "action" or not hold))
        for original in ignored:
            if (
                normalize_key(original) in AMBIGUOUS_SIZE_KEYS
                and not _is_null_word(data.get(original))
                and _is_null_word(values.get("quantity"))
                and _is_null_word(values.get("notional"))
                and not hold
            ):
                raise ValueError(
                    f"{original!r} is ambiguous: use quantity (asset units) or notional (USD)"
                )
        if ignored:
            warnings.append("ignored keys: " + ", ".join(sorted(ignored)[:10]))
        if hold:
            dropped = [f for f in SIZE_FIELDS if not _is_null_word(values.get(f))]
            for f in SIZE_FIELDS:
                values.pop(f, None)
            if dropped:
                warnings.append("hold ignores " + ", ".join(dropped))
            try:
                values["symbol"] = _normalize_symbol(values.get("symbol"))
            except ValueError:
                warnings.append(f"hold ignores the unusable symbol {_short(values['symbol'])}")
                values["symbol"] = None
        if "confidence" in values:
            with contextlib.suppress(ValueError):  # else the field validator reports it
                values["confidence"] = _confidence(values["confidence"], warnings)
        if "reasoning" in values:
            values["reasoning"] = _reasoning(values["reasoning"], warnings)
        else:
            warnings.append("no reasoning given")
        values["ignored_keys"] = ignored
        values["parse_warnings"] = warnings
        return values

    @field_validator("action", mode="before")
    @classmethod
    def _action(cls, value: Any) -> Any:
        if isinstance(value, Action):
            return value
        if not isinstance(value, str):
            raise ValueError(f"must be one of buy, sell, hold (got {_short(value)})")
        word = value.strip().lower()
        if word not in {"buy", "sell", "hold"}:
            raise ValueError(f"must be one of buy, sell, hold (got {_short(value)})")
        return Action(word)

    @field_validator("symbol", mode="before")
    @classmethod
    def _symbol(cls, value: Any) -> Any:
        return _normalize_symbol(value)

    @field_validator("quantity", mode="before")
    @classmethod
    def _quantity(cls, value: Any) -> Any:
        return _positive(value, MAX_QUANTITY, "use null to let risk size the trade")

    @field_validator("notional", mode="before")
    @classmethod
    def _notional(cls, value: Any) -> Any:
        return _positive(value, MAX_NOTIONAL, "use null to let risk size the trade")

    @field_validator("stop_loss", "take_profit", mode="before")
    @classmethod
    def _price(cls, value: Any) -> Any:
        return _positive(value, MAX_PRICE, "use null for none")

    @field_validator("confidence", mode="before")
    @classmethod
    def _confidence_checked(cls, value: Any) -> Any:
        # _normalize already converted what it could (with warnings); this reports the rest
        return _confidence(value, [])

    @model_validator(mode="after")
    def _needs_symbol(self) -> LLMDecision:
        if self.action is not Action.HOLD and self.symbol is None:
            raise ValueError(f"symbol is required for {self.action.value}")
        return self


def to_decision(d: LLMDecision, warnings: list[str] | None = None) -> Decision:
    """The domain decision; ignored keys and warnings (``warnings``, else the model's own)
    go to ``meta`` for the audit trail."""
    meta: dict[str, Any] = {"source": "llm"}
    if d.ignored_keys:
        meta["ignored_keys"] = list(d.ignored_keys)
    shown = list(d.parse_warnings if warnings is None else warnings)
    if shown:
        meta["warnings"] = shown
    return Decision(
        action=d.action,
        symbol=d.symbol,
        quantity=d.quantity,
        notional=d.notional,
        reasoning=d.reasoning,
        confidence=d.confidence,
        stop_loss=d.stop_loss,
        take_profit=d.take_profit,
        meta=meta,
    )
