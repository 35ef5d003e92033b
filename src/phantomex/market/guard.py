"""The price guard: every price a source hands the kernel passes here first, whatever the source
(replay, coingecko, ccxt, yahoo, polymarket, or several at once).

Per symbol, each new observation (a snapshot other than the last one seen, with the tick's bar
of the symbol if it has one) is

- *invalid* when it fails validation (:mod:`phantomex.market.validation`: not a positive finite
  price below the ceiling ``max_price``, a candle whose open or close lies outside its range; a
  prediction-market price above 1);
- a *jump* when its price (the snapshot's, and the bar's open and close: the prices trades fill
  at) is ``max_jump`` times or more above or below the last accepted price of the symbol. A bar's
  low and high are only validated: exchanges do print absurd wicks (Binance's LINK/USDT daily
  bar of 2020-03-12 has a low of 0.0001 and a close of 1.99), and a wick only triggers resting
  orders at the agent's own limit or stop price;
- accepted otherwise (and the first valid price of a symbol is accepted: there is nothing to
  compare it with).

An invalid or jumping observation makes the symbol *suspect*. While it is, the kernel keeps its
last accepted price and mark (so no equity, drawdown or stop-loss moves on it), its bars are
withheld from the history and from resting orders, every decision on it is held with the reason,
and forced exits on it wait. The episode ends when

- a valid price within ``max_jump`` of the last accepted one arrives: the outlier was a blip and
  the withheld bars are discarded; or
- ``confirmations`` valid observations in a row agree on a new level (each within ``max_jump`` of
  the first of them): the new level is accepted and the withheld bars join the history.

Defaults, per asset class: crypto and equities jump at a factor of 10. That catches the
signatures of bad data (a price near zero, a decimal point shifted, cents read as dollars) while
the largest genuine one-bar moves of liquid coins and listed stocks (flash crashes of 30-50%,
limit-up days) stay well inside it; an unadjusted 10:1 stock split is caught, and held until the
new level is confirmed. Prediction-market prices are probabilities in (0, 1]: a tenfold move
(0.03 to 0.30) is ordinary news there, so they have no jump rule, and a price above 1 is invalid.
Three confirmations hold a symbol for three bars (three minutes of 1-minute bars) before a new
level counts. The guard keeps no state across restarts: the first price after one is accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from phantomex.domain.models import AssetClass, Bar, Instrument, Snapshot, Tick
from phantomex.domain.money import MAX_PRICE, MONEY_CONTEXT, ONE, ZERO
from phantomex.market.columns import BarColumns
from phantomex.market.guard_columns import bar_accepted, quiet_columns
from phantomex.market.validation import bar_fault, price_fault

__all__ = ["GuardEvent", "PriceGuard", "PriceGuardConfig", "Screened", "Suspect"]

Factor = Annotated[Decimal, Field(gt=1, allow_inf_nan=False)]


def _default_jumps() -> dict[AssetClass, Decimal]:
    return {AssetClass.CRYPTO: Decimal(10), AssetClass.EQUITY: Decimal(10)}


class PriceGuardConfig(BaseModel):
    """The ``[price_guard]`` settings table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        True, description="Check every incoming price (off: prices are taken as they come)."
    )
    max_jump: dict[AssetClass, Factor] = Field(
        default_factory=_default_jumps,
        description="Per asset class: a price this many times above or below the last accepted "
        "one is suspect. A class not listed has no jump rule (prediction markets by default).",
    )
    confirmations: int = Field(
        3,
        ge=2,
        le=10_000,
        description="Prices in a row at a new level that make it accepted (the first included).",
    )
    max_price: Decimal = Field(
        MAX_PRICE,
        gt=0,
        le=MAX_PRICE,
        allow_inf_nan=False,
        description="Price ceiling: a price at or above it is garbage (also when loading files).",
    )


@dataclass(slots=True)
class Suspect:
    """A symbol whose latest prices are not trusted, and why."""

    symbol: str
    since: datetime  # the kernel time the episode began
    reason: str  # why the latest observation was not accepted
    last_accepted: Decimal | None
    price: Decimal | None  # the latest suspect price (None when it was invalid)
    agreeing: int  # observations in a row at the new level so far
    needed: int

    def hold_reason(self) -> str:
        """The reason a decision or a forced exit on the symbol waits."""
        if self.price is None:
            return f"{self.symbol} price not usable: {self.reason}; trading waits for a valid price"
        return (
            f"{self.symbol} price suspect: {self.reason}; trading waits until {self.needed} "
            f"prices in a row confirm the new level, or a price near {self.last_accepted} returns"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "reason": self.reason,
            "last_accepted": None if self.last_accepted is None else str(self.last_accepted),
            "price": None if self.price is None else str(self.price),
            "confirmations": self.agreeing,
            "needed": self.needed,
        }


@dataclass(frozen=True, slots=True)
class GuardEvent:
    """A change of a symbol's trust: ``price_suspect``, ``price_confirmed`` (a new level was
    accepted) or ``price_restored`` (a plausible price returned; suspect prices discarded)."""

    kind: str
    symbol: str
    detail: str


@dataclass(frozen=True, slots=True)
class Screened:
    """A tick as the guard passes it on: ``tick`` holds the accepted snapshots and bars only;
    ``history`` the bars to append to the price history (withheld bars released by a
    confirmation, then the accepted ones), ``events`` the changes of trust."""

    tick: Tick
    history: list[Bar]
    events: list[GuardEvent]


@dataclass(slots=True)
class _Symbol:
    """What the guard remembers about one symbol."""

    jump: Decimal | None
    ceiling: Decimal
    cap: Decimal | None  # the most a price can be (1 for a prediction share)
    accepted: Decimal | None = None
    upper: Decimal = ZERO  # accepted * jump: a price at or above it jumped up
    lower: Decimal = ZERO  # accepted / jump: a price at or below it jumped down
    seen: Snapshot | None = None  # the latest snapshot observed
    suspect: Suspect | None = None
    anchor: Decimal | None = None  # the first price of the current run at a new level
    withheld: list[Bar] = field(default_factory=list)
    bounded: bool = True  # upper and lower are those of accepted (see PriceGuard.follow)

    def accept(self, price: Decimal) -> None:
        if price == self.accepted:
            if self.bounded:
                return
            price = self.accepted  # the price kept is the first of equal ones, as ever
        self.accepted = price
        self.bounded = True
        if self.jump is not None:  # in one fixed context, so a plan's check agrees exactly
            self.upper = MONEY_CONTEXT.multiply(price, self.jump)
            self.lower = MONEY_CONTEXT.divide(price, self.jump)

    def fault(self, price: Decimal, bar: Bar | None) -> str | None:
        """Why a snapshot price and its bar are not usable, or None."""
        if self._usable(price, bar):
            return None
        fault = price_fault("price", price, self.ceiling)
        if fault is None and bar is not None:
            fault = bar_fault(bar.open, bar.high, bar.low, bar.close, bar.volume, self.ceiling)
        if fault is None and self.cap is not None:
            high = price if bar is None else max(price, bar.high)
            if high > self.cap:
                fault = f"price {high} is above {self.cap}, the most a share here pays"
        return fault

    def _usable(self, price: Decimal, bar: Bar | None) -> bool:
        """:meth:`fault` is None: the common case, checked in one go."""
        top = self.ceiling
        try:
            if bar is None:
                return ZERO < price < top and (self.cap is None or price <= self.cap)
            lo, hi, v = bar.low, bar.high, bar.volume
            return (
                ZERO < lo <= bar.open <= hi < top
                and lo <= bar.close <= hi
                and ZERO < price < top
                and (self.cap is None or max(price, hi) <= self.cap)
                and v >= ZERO
                and v.is_finite()
            )
        except ArithmeticError:  # NaN compared
            return False

    def jumped(self, price: Decimal, bar: Bar | None) -> str | None:
        """How a valid price or its bar jumped from the last accepted price, or None."""
        if self.accepted is None or self.jump is None:
            return None
        if not self.bounded:
            self.accept(self.accepted)
        upper, lower = self.upper, self.lower
        if lower < price < upper and (
            bar is None or (lower < bar.open < upper and lower < bar.close < upper)
        ):
            return None
        for label, p in _labelled(price, bar):
            if p >= self.upper or p <= self.lower:
                way = "above" if p >= self.upper else "below"
                return (
                    f"{label} {p} is {self.jump} or more times {way} "
                    f"the last accepted {self.accepted}"
                )
        return None


class PriceGuard:
    """Screens the ticks of a feed (see the module); one per kernel."""

    def __init__(self, config: PriceGuardConfig | None = None) -> None:
        self.config = config or PriceGuardConfig()
        self._symbols: dict[str, _Symbol] = {}

    # -- queries -----------------------------------------------------------------------------------
    def suspects(self) -> dict[str, Suspect]:
        """The symbols currently suspect."""
        return {s: st.suspect for s, st in self._symbols.items() if st.suspect is not None}

    def held(self) -> dict[str, str]:
        """Suspect symbol -> the reason trading on it waits (for the risk engine)."""
        return {s: v.hold_reason() for s, v in self.suspects().items()}

    # -- screening ---------------------------------------------------------------------------------
    def screen(self, tick: Tick, instruments: Callable[[], Mapping[str, Instrument]]) -> Screened:
        """Judge every price of ``tick``; ``instruments`` is asked when a new symbol shows up."""
        if not self.config.enabled:
            return Screened(tick, list(tick.bars.values()), [])
        snaps: dict[str, Snapshot] = {}
        bars: dict[str, Bar] = {}
        history: list[Bar] = []
        events: list[GuardEvent] = []
        for symbol in dict.fromkeys([*tick.snapshots, *tick.bars]):
            state = self._symbols.get(symbol) or self._track(symbol, instruments())
            snap, bar = tick.snapshots.get(symbol), tick.bars.get(symbol)
            if self._observe(symbol, state, snap, bar, tick.time, history, events):
                if snap is not None:
                    snaps[symbol] = snap
                if bar is not None:
                    bars[symbol] = bar
        if len(snaps) == len(tick.snapshots) and len(bars) == len(tick.bars):
            return Screened(tick, history, events)
        return Screened(Tick(tick.time, snaps, bars), history, events)

    def follow(
        self, snapshots: Mapping[str, Snapshot], instruments: Callable[[], Mapping[str, Instrument]]
    ) -> None:
        """Take the latest prices of ticks a backtest passed over without visiting them (only
        ever ticks :meth:`quiet` vouched for: every price of them is accepted)."""
        if not self.config.enabled:
            return
        for symbol, snap in snapshots.items():
            state = self._symbols.get(symbol) or self._track(symbol, instruments())
            # accepted, with upper and lower left for jumped() to work out (a backtest's plan
            # follows every tick's price and never screens one)
            if snap.price != state.accepted:
                state.accepted = snap.price
                state.bounded = False
            state.seen = snap

    def quiet(
        self, series: Mapping[str, Sequence[Bar]], instruments: Mapping[str, Instrument]
    ) -> bool:
        """Whether screening each symbol's bars in order (a replay, whose snapshots are the
        bars' closes) accepts every one of them, so that a backtest may pass over them. Exact:
        the same comparisons as :meth:`screen`, about half a microsecond per bar; bars as
        columns (:class:`BarColumns`) are decided on their floats where these decide it and
        exactly elsewhere (:func:`~phantomex.market.guard_columns.quiet_columns`)."""
        if not self.config.enabled:
            return True
        for symbol, bars in series.items():
            jump, ceiling, cap = self._rules(instruments.get(symbol))
            if isinstance(bars, BarColumns):
                if not quiet_columns(bars, jump, ceiling, cap):
                    return False
                continue
            if not all(bar_accepted(b, ceiling, cap) for b in bars):
                return False
            if jump is not None and not _steady(bars, jump):
                return False
        return True

    # -- internals ---------------------------------------------------------------------------------
    def _rules(
        self, instrument: Instrument | None
    ) -> tuple[Decimal | None, Decimal, Decimal | None]:
        """For an instrument: the jump factor (None: no jump rule), the price ceiling, and the
        most its price can be (1 for a prediction share, else None)."""
        kind = instrument.asset_class if instrument is not None else AssetClass.CRYPTO
        cap = ONE if kind is AssetClass.PREDICTION else None
        return self.config.max_jump.get(kind), self.config.max_price, cap

    def _track(self, symbol: str, instruments: Mapping[str, Instrument]) -> _Symbol:
        state = self._symbols[symbol] = _Symbol(*self._rules(instruments.get(symbol)))
        return state

    def _observe(
        self,
        symbol: str,
        state: _Symbol,
        snap: Snapshot | None,
        bar: Bar | None,
        now: datetime,
        history: list[Bar],
        events: list[GuardEvent],
    ) -> bool:
        """Judge one symbol's snapshot and bar; True when they are passed on."""
        if snap is not None:
            if bar is None and _same(snap, state.seen):
                return state.suspect is None  # the latest snapshot again: as trusted as it was
            state.seen, price = snap, snap.price
        else:
            assert bar is not None
            price = bar.close
        fault = state.fault(price, bar)
        if fault is not None:
            state.anchor = None
            state.withheld.clear()
            self._suspect(symbol, state, now, fault, None, events)
            return False
        jumped = state.jumped(price, bar)
        if jumped is None:
            if state.suspect is not None:
                events.append(_restored(symbol, state, price))
            state.suspect, state.anchor = None, None
            state.withheld.clear()
            state.accept(price)
            if bar is not None:
                history.append(bar)
            return True
        assert state.jump is not None
        if (
            state.suspect is not None
            and state.anchor is not None
            and _near(state.anchor, state.jump, price, bar)
        ):
            state.suspect.agreeing += 1
        else:
            state.anchor = price
            state.withheld.clear()
            self._suspect(symbol, state, now, jumped, price, events)
        suspect = state.suspect
        assert suspect is not None
        suspect.price = price
        if bar is not None:
            state.withheld.append(bar)
        if suspect.agreeing < suspect.needed:
            return False
        events.append(
            GuardEvent(
                "price_confirmed",
                symbol,
                f"{symbol}: {suspect.agreeing} prices in a row confirm the new level {price} "
                f"(last accepted {state.accepted}); trading resumes",
            )
        )
        history.extend(state.withheld)
        state.withheld.clear()
        state.suspect, state.anchor = None, None
        state.accept(price)
        return True

    def _suspect(
        self,
        symbol: str,
        state: _Symbol,
        now: datetime,
        reason: str,
        price: Decimal | None,
        events: list[GuardEvent],
    ) -> None:
        """Start (or restart) a run of suspect observations of ``symbol``."""
        agreeing = 0 if price is None else 1
        if state.suspect is not None:
            state.suspect.reason, state.suspect.price = reason, price
            state.suspect.agreeing = agreeing
            return
        state.suspect = Suspect(
            symbol, now, reason, state.accepted, price, agreeing, self.config.confirmations
        )
        events.append(GuardEvent("price_suspect", symbol, state.suspect.hold_reason()))


def _steady(bars: Sequence[Bar], jump: Decimal) -> bool:
    """Whether no open or close of (valid) ``bars`` is ``jump`` times or more above or below the
    previous close, decided exactly as :meth:`_Symbol.jumped` decides it. The exact bounds of the
    previous close are computed only for a bar outside a safe band around an anchor close: while
    the previous close stays within a factor 2 of the anchor, any price within a factor
    ``jump / 2.5`` of the anchor is within the bounds with a margin of 25 %."""
    multiply, divide = MONEY_CONTEXT.multiply, MONEY_CONTEXT.divide
    two, margin = Decimal(2), Decimal("2.5")
    previous: Decimal | None = None
    near_lo = near_hi = safe_lo = safe_hi = ZERO
    for bar in bars:
        o, c = bar.open, bar.close
        if previous is not None and not (safe_lo < o < safe_hi and safe_lo < c < safe_hi):
            lower, upper = divide(previous, jump), multiply(previous, jump)
            if not (lower < o < upper and lower < c < upper):
                return False
        if not near_lo < c < near_hi:  # a new anchor
            near_lo, near_hi = divide(c, two), multiply(c, two)
            safe_lo, safe_hi = divide(multiply(c, margin), jump), divide(multiply(c, jump), margin)
        previous = c
    return True


def _same(snap: Snapshot, seen: Snapshot | None) -> bool:
    """Whether ``snap`` repeats ``seen`` (same time and price; NaNs compare without raising)."""
    if snap is seen:
        return True
    return (
        seen is not None and snap.time == seen.time and snap.price.compare_total(seen.price) == ZERO
    )


def _labelled(price: Decimal, bar: Bar | None) -> tuple[tuple[str, Decimal], ...]:
    """The prices the jump rule judges: the snapshot's, and its bar's open and close."""
    if bar is None:
        return (("price", price),)
    return (("price", price), ("open", bar.open), ("close", bar.close))


def _near(anchor: Decimal, jump: Decimal, price: Decimal, bar: Bar | None) -> bool:
    """Whether a price and its bar stay within ``jump`` of the first price of a new level."""
    return all(p < anchor * jump and p * jump > anchor for _, p in _labelled(price, bar))


def _restored(symbol: str, state: _Symbol, price: Decimal) -> GuardEvent:
    dropped = len(state.withheld)
    near = (
        f"within {state.jump}x of the last accepted {state.accepted}"
        if state.accepted is not None and state.jump is not None
        else "a valid price"
    )
    return GuardEvent(
        "price_restored",
        symbol,
        f"{symbol}: {price} is {near}; trading resumes"
        + (f" ({dropped} suspect bar(s) discarded)" if dropped else ""),
    )
