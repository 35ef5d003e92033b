"""Pre-trade checks, order sizing and forced exits."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal

from phantomex import formatting as fmt
from phantomex.domain.direct_init import direct_init
from phantomex.domain.models import (
    BUY_ACTION,
    BUY_SIDE,
    HOLD_ACTION,
    SELL_SIDE,
    Decision,
    Instrument,
    Side,
    Snapshot,
    Wallet,
)
from phantomex.domain.money import ZERO, all_in_quantity, is_valid_price, quantize_down
from phantomex.domain.risk import RiskProfile, RiskState, exit_due
from phantomex.risk.market_hours import market_closed

HUNDRED = Decimal(100)


@direct_init  # built on every trade
@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(slots=True)
class Verdict:
    """The risk engine's answer to a decision: an order size, or a rejection with its reason."""

    approved: bool
    side: Side | None = None
    symbol: str | None = None
    quantity: Decimal = ZERO
    price: Decimal | None = None
    reason: str = ""
    checks: list[Check] = field(default_factory=list)
    whole: bool = False  # size at fill time: all the cash (buy) or the whole holding (sell)
    hold: bool = False  # not a breach but a wait (market closed): recorded as a hold


#: The cooldown check passed (a check is immutable: one instance serves every verdict).
NO_COOLDOWN = Check("cooldown", True, "no trade within the cooldown")


def _reject(checks: list[Check], symbol: str | None, name: str, reason: str) -> Verdict:
    """A rejection by the check ``name``, after the ``checks`` passed so far."""
    checks.append(Check(name, False, reason))
    return Verdict(False, symbol=symbol, reason=reason, checks=checks)


@dataclass(frozen=True, slots=True)
class ForcedExit:
    symbol: str
    quantity: Decimal
    kind: str  # stop_loss | take_profit | max_hold | drawdown | kill
    detail: str


def price_problem(snap: Snapshot | None, now: datetime, max_age: int) -> str | None:
    """Why a snapshot can't be traded on (missing, invalid, stale), or None when it can."""
    if snap is None:
        return "no price"
    if not is_valid_price(snap.price):
        return f"invalid price {snap.price}"
    age = (now - snap.time).total_seconds()
    if age > max_age:
        return f"price is stale ({age:.0f}s old, limit {max_age}s)"
    return None


class RiskEngine:
    """Stateless rules; the per-agent memory lives in :class:`RiskState`."""

    def __init__(self, fee_bps: Decimal = Decimal(10)) -> None:
        self.fee_bps = fee_bps

    # -- daily loss and drawdown bookkeeping ------------------------------------------------------
    def update(
        self, profile: RiskProfile, state: RiskState, equity: Decimal, now: datetime
    ) -> str | None:
        """Roll the day, track the peak; return 'drawdown' or 'daily_loss' when a limit is hit."""
        if state.day != now.date():
            state.day = now.date()
            state.day_start_equity = equity
        if state.peak_equity is None or equity > state.peak_equity:
            state.peak_equity = equity
        if profile.max_drawdown_pct is not None and state.peak_equity > 0:
            dd = (state.peak_equity - equity) / state.peak_equity * HUNDRED
            if dd >= profile.max_drawdown_pct:
                return "drawdown"
        if (
            profile.daily_loss_limit_pct is not None
            and state.day_start_equity
            and state.day_start_equity > 0
        ):
            loss = (state.day_start_equity - equity) / state.day_start_equity * HUNDRED
            if loss >= profile.daily_loss_limit_pct:
                state.paused_until = datetime.combine(
                    now.date() + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo
                )
                return "daily_loss"
        return None

    def advance(
        self, state: RiskState, equity: Sequence[Decimal], times: Sequence[datetime]
    ) -> None:
        """:meth:`update` over ticks at which no limit can be hit (event skipping): the day rolls
        to the last tick's, starting at the equity of that day's first tick, and the peak
        follows. ``equity[i]`` is the equity at ``times[i]`` (sorted)."""
        if not times:
            return
        last = times[-1]
        if state.day != last.date():
            first = bisect_left(times, datetime.combine(last.date(), time.min, tzinfo=last.tzinfo))
            state.day = last.date()
            state.day_start_equity = equity[first]
        peak = max(equity)
        if state.peak_equity is None or peak > state.peak_equity:
            state.peak_equity = peak

    def forced_exits(
        self,
        profile: RiskProfile,
        wallet: Wallet,
        prices: dict[str, Snapshot],
        now: datetime,
        instruments: Mapping[str, Instrument] | None = None,
        suspect: Mapping[str, str] | None = None,
    ) -> list[ForcedExit]:
        """Stop-loss, take-profit and max-hold exits due now (only on fresh, valid prices that
        are not ``suspect`` (symbol -> why: see :mod:`phantomex.market.guard`), and while the
        instrument's market is open): an exit not due now is looked at again on the next tick."""
        exits: list[ForcedExit] = []
        if not has_exit_rules(profile):
            return exits
        for symbol, pos in sorted(wallet.positions.items()):
            snap = prices.get(symbol)
            if pos.quantity <= 0 or price_problem(snap, now, profile.max_price_age_seconds):
                continue
            if suspect and symbol in suspect:
                continue  # the guard holds the symbol: its exit waits for a trusted price
            if market_closed(instruments.get(symbol) if instruments else None, now):
                continue  # exits wait for the next open
            assert snap is not None
            due = exit_due(profile, pos.avg_cost, snap.price)
            kind, change = due if due is not None else (None, ZERO)
            if kind == "stop_loss":
                exits.append(
                    ForcedExit(
                        symbol,
                        pos.quantity,
                        "stop_loss",
                        f"{symbol} {change:.2f}% from average cost "
                        f"(stop-loss at -{profile.stop_loss_pct}%)",
                    )
                )
            elif kind == "take_profit":
                exits.append(
                    ForcedExit(
                        symbol,
                        pos.quantity,
                        "take_profit",
                        f"{symbol} +{change:.2f}% from average cost "
                        f"(take-profit at +{profile.take_profit_pct}%)",
                    )
                )
            elif (
                profile.max_hold_minutes is not None
                and pos.opened_at is not None
                and now - pos.opened_at >= timedelta(minutes=profile.max_hold_minutes)
            ):
                exits.append(
                    ForcedExit(
                        symbol,
                        pos.quantity,
                        "max_hold",
                        f"{symbol} held longer than {profile.max_hold_minutes} min",
                    )
                )
        return exits

    # -- pre-trade check --------------------------------------------------------------------------
    def check(
        self,
        decision: Decision,
        *,
        profile: RiskProfile,
        state: RiskState,
        wallet: Wallet,
        prices: dict[str, Snapshot],
        allowed_symbols: list[str],
        now: datetime,
        halted: str | None = None,
        instruments: Mapping[str, Instrument] | None = None,
        suspect: Mapping[str, str] | None = None,
        explain: bool = True,
    ) -> Verdict:
        """Turn a buy/sell decision into a sized order, or reject it with the reason. A symbol
        in ``suspect`` (symbol -> why: the price guard does not trust its latest prices) is a
        hold with that reason, like a closed market: a wait, not a breach. Without ``explain``
        the verdict's checks leave out the usual lines of checks that passed (for a caller that
        never reads them: a lean backtest); a resize and a failure are still explained."""
        checks: list[Check] = []
        symbol = decision.symbol
        if decision.action is HOLD_ACTION:
            return _reject(checks, symbol, "action", "hold: nothing to trade")
        if halted:
            return _reject(checks, symbol, "halt", halted)
        if not symbol or symbol not in allowed_symbols:
            reason = f"symbol {symbol!r} is not one of {allowed_symbols}"
            return _reject(checks, symbol, "symbol", reason)
        if explain:
            checks.append(Check("symbol", True, symbol))
        closed = market_closed(instruments.get(symbol) if instruments else None, now)
        if closed:
            verdict = _reject(checks, symbol, "market_hours", closed)
            verdict.hold = True
            return verdict
        if suspect and symbol in suspect:
            verdict = _reject(checks, symbol, "price_guard", suspect[symbol])
            verdict.hold = True
            return verdict
        snap = prices.get(symbol)
        problem = price_problem(snap, now, profile.max_price_age_seconds)
        if problem:
            return _reject(checks, symbol, "price", f"{symbol}: {problem}")
        assert snap is not None
        price = snap.price
        if explain:
            checks.append(Check("price", True, f"{symbol} at {price}"))
        if state.paused_until is not None and now < state.paused_until:
            reason = f"daily loss limit hit; paused until {state.paused_until}"
            return _reject(checks, symbol, "daily_loss", reason)
        if state.last_trade_at is not None and profile.cooldown_seconds:
            wait = profile.cooldown_seconds - (now - state.last_trade_at).total_seconds()
            if wait > 0:
                reason = f"cooldown: {wait:.0f}s until the next trade"
                return _reject(checks, symbol, "cooldown", reason)
        if explain:
            checks.append(NO_COOLDOWN)
        if decision.quantity is not None or decision.notional is not None:
            for name, value in (("quantity", decision.quantity), ("notional", decision.notional)):
                if value is not None and (not value.is_finite() or value <= 0):
                    reason = f"{name} must be a positive number, got {value}"
                    return _reject(checks, symbol, name, reason)

        if decision.action is BUY_ACTION:
            marks = {s: p.price for s, p in prices.items() if is_valid_price(p.price)}
            equity = wallet.equity(marks)
            verdict = self._size_buy(
                decision, profile, wallet, symbol, price, equity, checks, explain
            )
        else:
            verdict = self._size_sell(decision, profile, wallet, symbol, price, checks, explain)
        if not verdict.approved:
            return verdict
        lot = instruments[symbol].quantity_step if instruments and symbol in instruments else None
        if lot:  # whole shares: round down, and fill exactly that (not re-sized to the cash)
            verdict.quantity = quantize_down(verdict.quantity, lot)
            verdict.whole = verdict.whole and verdict.side is SELL_SIDE
            if verdict.quantity <= 0:
                reason = f"{symbol} trades in lots of {lot}: the order rounds to 0"
                return _reject(checks, symbol, "lot", reason)
        notional = verdict.quantity * price
        if notional < profile.min_order_notional:
            reason = (
                f"order of {notional:.2f} USD is below the minimum {profile.min_order_notional}"
            )
            return _reject(checks, symbol, "min_notional", reason)
        verdict.price = price
        return verdict

    def max_buy_quantity(
        self, profile: RiskProfile, wallet: Wallet, symbol: str, price: Decimal, equity: Decimal
    ) -> Decimal:
        """The largest buy of ``symbol`` that every limit and the cash allow right now."""
        return self._buy_limits(profile, wallet, symbol, price, equity)[0]

    def _buy_limits(
        self, profile: RiskProfile, wallet: Wallet, symbol: str, price: Decimal, equity: Decimal
    ) -> tuple[Decimal, Decimal]:
        """:meth:`max_buy_quantity` and the all-in quantity the cash alone buys."""
        by_alloc = equity * profile.max_allocation_pct / HUNDRED / price
        room = equity * profile.max_position_pct / HUNDRED - wallet.quantity(symbol) * price
        by_position = max(room, ZERO) / price
        by_cash = all_in_quantity(wallet.cash, price, self.fee_bps)
        return max(min(by_alloc, by_position, by_cash), ZERO), by_cash

    def _size_buy(
        self,
        decision: Decision,
        profile: RiskProfile,
        wallet: Wallet,
        symbol: str,
        price: Decimal,
        equity: Decimal,
        checks: list[Check],
        explain: bool,
    ) -> Verdict:
        limit, by_cash = self._buy_limits(profile, wallet, symbol, price, equity)
        if decision.quantity is not None:
            wanted = decision.quantity
        elif decision.notional is not None:
            wanted = decision.notional / price
        else:
            wanted = limit
        if wanted > limit:
            detail = (
                f"buy of {fmt.quantity(wanted)} {symbol} exceeds the limit of "
                f"{fmt.quantity(limit)} "
                f"(allocation {profile.max_allocation_pct}%, position "
                f"{profile.max_position_pct}%, cash {wallet.cash:.2f})"
            )
            if not profile.resize_to_fit:
                checks.append(Check("size", False, detail))
                return Verdict(False, symbol=symbol, reason=detail, checks=checks)
            checks.append(Check("size", True, "resized: " + detail))
            wanted = limit
        elif explain:
            checks.append(Check("size", True, f"buy {fmt.quantity(wanted)} {symbol} within limits"))
        if wanted <= 0:
            reason = f"no room to buy {symbol} (cash {wallet.cash:.2f})"
            checks.append(Check("size", False, reason))
            return Verdict(False, symbol=symbol, reason=reason, checks=checks)
        unsized = decision.quantity is None and decision.notional is None
        whole = unsized and wanted == by_cash  # all-in: re-sized to the cash at the fill price
        return Verdict(True, BUY_SIDE, symbol, wanted, checks=checks, whole=whole)

    @staticmethod
    def _size_sell(
        decision: Decision,
        profile: RiskProfile,
        wallet: Wallet,
        symbol: str,
        price: Decimal,
        checks: list[Check],
        explain: bool,
    ) -> Verdict:
        held = wallet.quantity(symbol)
        if held <= 0:
            reason = f"cannot sell {symbol}: not held (spot, no shorting)"
            checks.append(Check("holding", False, reason))
            return Verdict(False, symbol=symbol, reason=reason, checks=checks)
        if decision.quantity is not None:
            wanted = decision.quantity
        elif decision.notional is not None:
            wanted = decision.notional / price
        else:
            wanted = held
        if wanted > held:
            detail = (
                f"sell of {fmt.quantity(wanted)} {symbol} exceeds the holding of "
                f"{fmt.quantity(held)}"
            )
            if not profile.resize_to_fit:
                checks.append(Check("holding", False, detail))
                return Verdict(False, symbol=symbol, reason=detail, checks=checks)
            checks.append(Check("holding", True, "resized: " + detail))
            wanted = held
        elif explain:
            shown = fmt.quantity(held)  # the whole holding (the usual sell) is shown once
            selling = shown if wanted is held else fmt.quantity(wanted)
            checks.append(Check("holding", True, f"sell {selling} of {shown} {symbol}"))
        whole = decision.quantity is None and decision.notional is None
        return Verdict(True, SELL_SIDE, symbol, wanted, checks=checks, whole=whole)


class BuyLimits:
    """:meth:`RiskEngine.max_buy_quantity` per symbol, for one wallet at one set of marks (the
    wallet's equity valued once, when first needed); called with a symbol that has a mark."""

    __slots__ = ("_equity", "engine", "marks", "profile", "wallet")

    def __init__(
        self, engine: RiskEngine, profile: RiskProfile, wallet: Wallet, marks: dict[str, Decimal]
    ) -> None:
        self.engine, self.profile, self.wallet, self.marks = engine, profile, wallet, marks
        self._equity: Decimal | None = None

    def __call__(self, symbol: str) -> Decimal:
        equity = self._equity
        if equity is None:
            equity = self._equity = self.wallet.equity(self.marks)
        return self.engine._buy_limits(  # max_buy_quantity, one call less
            self.profile, self.wallet, symbol, self.marks[symbol], equity
        )[0]


def has_exit_rules(profile: RiskProfile) -> bool:
    """Whether ``profile`` has a rule that forces exits (stop-loss, take-profit, max hold):
    without one, :meth:`RiskEngine.forced_exits` finds none (backtests of rule strategies by
    default)."""
    return (
        profile.stop_loss_pct is not None
        or profile.take_profit_pct is not None
        or profile.max_hold_minutes is not None
    )
