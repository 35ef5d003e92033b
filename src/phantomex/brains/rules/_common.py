"""Shared plumbing of the rule brains: parameter base model, per-symbol signals and the choice of
one decision among several symbols.

Every rule brain is long-only spot. It evaluates each of the agent's symbols into a
:class:`Signal` and :func:`choose` turns those into one :class:`Decision`: exits before entries,
then the strongest signal, ties broken by the order of ``ctx.symbols`` (deterministic)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from math import inf as INF
from math import isfinite
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from phantomex.brains.base import BrainContext
from phantomex.brains.indicators import BoolArray, FloatArray
from phantomex.domain.direct_init import direct_init
from phantomex.domain.models import HOLD_ACTION, Action, Decision
from phantomex.domain.money import ZERO, is_valid_price


class RuleParams(BaseModel):
    """Base of every rule brain's parameters: unknown names are rejected, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@direct_init  # built on every decision
@dataclass(frozen=True, slots=True)
class Signal:
    """What a rule says about one symbol. ``strength`` ranks actionable signals (bigger wins)."""

    symbol: str
    action: Action
    reasoning: str
    strength: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def hold(cls, symbol: str, reasoning: str, **meta: Any) -> Signal:
        return cls(symbol, Action.HOLD, reasoning, meta={"symbol": symbol, **meta})


def fmt(value: float | Decimal, digits: int = 8) -> str:
    """A price or value for reasoning text: up to ``digits`` significant digits, no exponent
    noise for ordinary prices (67234.5, 0.000123)."""
    return f"{float(value):.{digits}g}"


def num(value: float | Decimal, digits: int = 6) -> float:
    """A JSON-friendly float for ``meta``."""
    return round(float(value), digits)


def unique_symbols(symbols: Iterable[str]) -> list[str]:
    """The symbols in order, without duplicates."""
    return list(dict.fromkeys(symbols))


def current_price(ctx: BrainContext, symbol: str) -> Decimal | None:
    """The latest price of ``symbol`` if it is present, finite and positive."""
    snap = ctx.prices.get(symbol)  # ctx.mark(symbol), inline: asked on every decision
    price = snap.price if snap is not None else None
    return price if is_valid_price(price) else None


def holding(ctx: BrainContext, symbol: str) -> Decimal:
    """Quantity held (0 when flat)."""
    qty = ctx.wallet.quantity(symbol)
    return qty if qty > ZERO else ZERO


def buy_blocked(ctx: BrainContext, symbol: str) -> bool:
    """True when the kernel says no quantity at all can be bought (no buying power)."""
    limit = ctx.max_buy_quantity.get(symbol)
    return limit is not None and limit <= ZERO


_least, _most = np.minimum.reduce, np.maximum.reduce  # NaN wins both: it fails either test


def closes_or_reason(
    ctx: BrainContext, symbol: str, need: int, lookback: int
) -> tuple[FloatArray | None, str]:
    """The last ``lookback`` closes of ``symbol`` (at least ``need``), or None and why not."""
    closes = ctx.history.closes(symbol, lookback)
    if closes.size < need:
        return None, f"{symbol}: not enough history ({closes.size}/{need} bars)"
    if not (_least(closes) > 0 and _most(closes) < INF):  # every close finite and positive
        return None, f"{symbol}: history has missing or invalid prices"
    return closes, ""


def close_list_or_reason(
    ctx: BrainContext, symbol: str, need: int, lookback: int
) -> tuple[list[float] | None, str]:
    """:func:`closes_or_reason` as a list of floats: a short window read in plain Python."""
    closes = ctx.history.close_list(symbol, lookback)
    if len(closes) < need:
        return None, f"{symbol}: not enough history ({len(closes)}/{need} bars)"
    if not _all_positive_finite(closes):
        return None, f"{symbol}: history has missing or invalid prices"
    return closes, ""


def _all_positive_finite(values: list[float]) -> bool:
    """Whether every value is finite and positive. A finite sum rules out NaN and infinities
    (either makes the sum NaN or infinite), and then the least value decides; only a sum that
    overflows from finite values needs the value-by-value test."""
    if values and isfinite(sum(values)):
        return min(values) > 0
    return all(0 < value < INF for value in values)  # NaN fails the comparison too


def choose(signals: list[Signal]) -> Decision:
    """One decision from per-symbol signals: sells first, then the strongest, then symbol order."""
    if len(signals) == 1:  # one symbol: its signal is the decision
        only = signals[0]
        if only.action is HOLD_ACTION:
            return Decision.hold(only.reasoning, **only.meta)
        meta = dict(only.meta)
        meta.setdefault("symbol", only.symbol)
        return Decision(action=only.action, symbol=only.symbol, reasoning=only.reasoning, meta=meta)
    if not signals:
        return Decision.hold("no symbols to trade")
    ranked = sorted(
        (
            (0 if s.action is Action.SELL else 1, -s.strength, i, s)
            for i, s in enumerate(signals)
            if s.action is not Action.HOLD
        ),
        key=lambda item: item[:3],
    )
    if ranked:
        best = ranked[0][3]
        meta = dict(best.meta)
        meta.setdefault("symbol", best.symbol)
        if len(signals) > 1:
            meta["signals"] = {s.symbol: s.action.value for s in signals}
        return Decision(action=best.action, symbol=best.symbol, reasoning=best.reasoning, meta=meta)
    return Decision.hold(
        "; ".join(s.reasoning for s in signals),
        symbols={s.symbol: s.meta for s in signals},
    )


class RuleBrain:
    """Base of the rule brains. Subclasses set ``kind``, ``title``, ``description`` and a nested
    ``Params`` model, and implement :meth:`evaluate` for one symbol."""

    kind: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[RuleParams]]
    #: Decides at once (:class:`~phantomex.brains.base.InstantBrain`); a subclass with a
    #: ``decide`` of its own (which may wait) is not instant.
    instant: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "decide" in cls.__dict__:
            cls.instant = False

    async def decide(self, ctx: BrainContext) -> Decision:
        return self.decide_now(ctx)

    def decide_now(self, ctx: BrainContext) -> Decision:
        """The decision, at once: one signal per symbol, then :func:`choose`."""
        symbols = ctx.symbols
        if len(symbols) == 1:  # the usual agent: no duplicates to drop
            return choose([self.evaluate(ctx, symbols[0])])
        return choose([self.evaluate(ctx, symbol) for symbol in unique_symbols(symbols)])

    def evaluate(self, ctx: BrainContext, symbol: str) -> Signal:
        raise NotImplementedError

    def may_act(self, closes: FloatArray, *, held: bool) -> BoolArray | None:
        """Vectorised signals: over a whole close series, True at each bar where
        :meth:`evaluate` may return something other than a hold while the wallet holds the
        symbol (``held``) or is flat in it, False where it certainly holds; None when the
        strategy has no vectorised form. Each value depends only on the closes up to its bar,
        and tolerances make it a superset of the bars where the windowed, per-bar computation
        acts."""
        return None

    def describe(self) -> str:
        raise NotImplementedError
