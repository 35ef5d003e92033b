"""The research engine's compiled loop: one rule agent on one symbol, bar by bar, doing what
the exact kernel does for it in a backtest (see :mod:`phantomex.research.fast`).

Per tick (bar ``i``, tick time = its open + the period): resting market orders fill at the
bar's open (``next_open``) → risk bookkeeping (day roll, peak, drawdown stop, daily-loss pause,
stop-loss / take-profit / max-hold exits) → the agent decides if due (the brains' own signal
functions from :mod:`phantomex.brains.rules.signals`, on TA-Lib-identical windowed indicators)
→ the risk check (cooldown, sizing, allocation cap, minimum notional) → the order rests (or
fills at the close, ``close``) → equity marked to the close.

Money is float64 here (the exact kernel's is Decimal): a comparison of money against a
threshold that lands within a hair of it (:data:`.codes.AMBIGUOUS`) is reported instead of
trusted, and the caller then runs the exact kernel.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from phantomex.brains.rules import signals
from phantomex.research.fast.codes import (
    BRAIN,
    DRAWDOWN,
    EMA,
    MAX_HOLD,
    PAUSED,
    RUNNING,
    SMA,
    STOP_LOSS,
    STOPPED,
    TAKE_PROFIT,
)
from phantomex.research.fast.indicators import ema_tail, rsi_last, sma_tail

DAY_US = 86_400_000_000
PCT_MARGIN = 1e-7  # percentage points: float error is ~1e-11 even after 10^5 trades
REL_MARGIN = 1e-9  # relative, for money against money
FILTER_TOL = 1e-7  # relative: whole-series filter vs the windowed indicators (error ~1e-12)
#: RSI points between the whole-series RSI and a window's when the window starts at the first
#: bar (the same arithmetic: rounding only) or the series' gain + loss exceeds the filter's
#: tolerance ``1e6 * step * memory``. The seeds' averages differ by at most ``step`` and the
#: difference shrinks by ``memory`` over the window, so the RSIs differ by at most
#: ``100 * 3 * step * memory / (gain + loss)`` < 3e-4 points; 1e-2 leaves 30x for rounding.
RSI_MARGIN = 1e-2

_cross = njit(cache=True, nogil=True)(signals.cross)
_momentum_signal = njit(cache=True, nogil=True)(signals.momentum_signal)
_rsi_signal = njit(cache=True, nogil=True)(signals.rsi_signal)


@njit(cache=True, nogil=True, inline="always")
def decide(
    kind: int,
    c: np.ndarray,
    i: int,
    held: bool,
    p1: int,
    p2: int,
    lo: float,
    hi: float,
    need: int,
    lookback: int,
    fa: np.ndarray,
    fb: np.ndarray,
    tol_extra: float,
) -> int:
    """The brain's signal at bar ``i`` (its look-back window ``c[a..i]``). ``fa``/``fb``:
    whole-series filter series (fast/slow average, or RSI and its gain + loss); where they
    show the decision is certainly a hold, the exact windowed check is skipped."""
    window = min(lookback, i + 1)
    if window < need:
        return signals.HOLD
    a = i - window + 1
    extra = tol_extra if a > 0 else 0.0
    if kind in (SMA, EMA):
        now = fa[i] - fb[i]
        prev = fa[i - 1] - fb[i - 1]
        if math.isfinite(now) and math.isfinite(prev):
            tol_n = FILTER_TOL * (abs(fa[i]) + abs(fb[i])) + extra
            tol_p = FILTER_TOL * (abs(fa[i - 1]) + abs(fb[i - 1])) + extra
            if held:
                if not (now < tol_n and prev >= -tol_p):
                    return signals.HOLD
                if now < -tol_n and prev >= tol_p:  # certainly crossed below
                    return _momentum_signal(-1, held)
            else:
                if not (now > -tol_n and prev <= tol_p):
                    return signals.HOLD
                if now > tol_n and prev <= -tol_p:  # certainly crossed above
                    return _momentum_signal(1, held)
        if kind == SMA:
            f_prev, f_now = sma_tail(c, a, i, p1)
            s_prev, s_now = sma_tail(c, a, i, p2)
        else:
            f_prev, f_now = ema_tail(c, a, i, p1)
            s_prev, s_now = ema_tail(c, a, i, p2)
        return _momentum_signal(_cross(f_now, f_prev, s_now, s_prev), held)
    value = fa[i]
    if math.isfinite(value) and (a == 0 or fb[i] > extra):
        if held and value <= hi - RSI_MARGIN:
            return signals.HOLD
        if not held and value >= lo + RSI_MARGIN:
            return signals.HOLD
        # Certainly beyond the level, and the window moved (its gain + loss is above what a
        # flat window of the look-back keeps of the seed): the brain's signal, unchecked.
        if fb[i] > extra:
            if held and value >= hi + RSI_MARGIN:
                return signals.SELL
            if not held and value <= lo - RSI_MARGIN:
                return signals.BUY
    low = c[a]
    high = c[a]
    for j in range(a + 1, i + 1):
        low = min(low, c[j])
        high = max(high, c[j])
    if high == low:  # the brain: price has not moved, RSI undefined
        return signals.HOLD
    return _rsi_signal(rsi_last(c, a, i, p1), held, lo, hi)


@njit(cache=True, nogil=True)
def _near(a: float, b: float) -> bool:
    return abs(a - b) <= REL_MARGIN * max(abs(a), abs(b))


@njit(cache=True, nogil=True)
def _fill(
    m: np.ndarray,
    t: np.ndarray,
    side: int,
    fixed: float,
    whole: bool,
    price: float,
    fee: float,
    resize: bool,
    when: int,
    tick: int,
) -> tuple[float, float, int]:
    """Fill an order at ``price`` against the wallet ``m`` = [cash, qty, cost] with times
    ``t`` = [opened, last trade]: (quantity, fee, ambiguity code); quantity 0: rejected."""
    cash, qty = m[0], m[1]
    if side == signals.BUY:
        q = max(cash, 0.0) / (price * (1 + fee)) if whole else fixed
        notional = q * price
        total = notional + notional * fee
        amb = 0
        if not whole and _near(total, cash):
            amb = 6
        if total > cash and not whole:  # an all-in buy only overshoots by rounding
            if not resize:
                return 0.0, 0.0, amb
            q = cash / (price * (1 + fee))
        if q <= 0:
            return 0.0, 0.0, amb
        notional = q * price
        paid = notional * fee
        m[0] = max(cash - (notional + paid), 0.0)
        if qty == 0:
            t[0] = when
        m[1] = qty + q
        m[2] += notional + paid
        t[1] = tick
        return q, paid, amb
    q = qty if whole else fixed
    if q > qty:
        if not resize:
            return 0.0, 0.0, 0
        q = qty
    if q <= 0:
        return 0.0, 0.0, 0
    notional = q * price
    paid = notional * fee
    m[0] = cash + (notional - paid)
    if q == qty:
        m[1] = 0.0
        m[2] = 0.0
        t[0] = -1
    else:
        m[2] -= m[2] * q / qty
        m[1] = qty - q
    t[1] = tick
    return q, paid, 0


@njit(cache=True, nogil=True)
def simulate(
    opens: np.ndarray,
    closes: np.ndarray,
    open_us: np.ndarray,
    tick_us: np.ndarray,
    kind: int,
    p1: int,
    p2: int,
    lo: float,
    hi: float,
    need: int,
    lookback: int,
    fa: np.ndarray,
    fb: np.ndarray,
    tol_extra: float,
    cash0: float,
    fee: float,
    slip: float,
    fill_close: bool,
    interval_us: int,
    stop_loss: float,
    take_profit: float,
    max_hold_us: int,
    daily_loss: float,
    max_drawdown: float,
    cooldown_us: int,
    min_notional: float,
    whole_buy: bool,
    alloc_frac: float,
    resize: bool,
) -> tuple[
    int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
    int, int, int,
]:  # fmt: skip
    """Run one agent over the bars. Returns (trades, their bar, side, quantity, price, fee,
    kind, equity at each bar's close, final status, ambiguity code, its bar)."""
    n = closes.size
    cap = 2 * n + 2
    tr_bar = np.empty(cap, np.int64)
    tr_side = np.empty(cap, np.int8)
    tr_qty = np.empty(cap)
    tr_price = np.empty(cap)
    tr_fee = np.empty(cap)
    tr_kind = np.empty(cap, np.int8)
    equity = np.empty(n)
    m = np.array([cash0, 0.0, 0.0])  # cash, quantity, cost basis
    t = np.array([-1, -1], np.int64)  # position opened at, last trade at (-1: never)
    pend_side = np.zeros(2, np.int8)
    pend_qty = np.zeros(2)
    pend_whole = np.zeros(2, np.bool_)
    pend_kind = np.zeros(2, np.int8)
    pending = 0
    ntr = 0
    status = RUNNING
    paused_until = 0
    last_decided = -1
    decided = False
    peak = math.nan
    day = -1
    day_start = 0.0
    amb = 0
    amb_bar = -1
    for i in range(n):
        now = tick_us[i]
        c = closes[i]
        # resting market orders fill at this bar's open
        for j in range(pending):
            o = opens[i]
            price = o + o * slip if pend_side[j] == signals.BUY else o - o * slip
            q, paid, code = _fill(
                m, t, pend_side[j], pend_qty[j], pend_whole[j], price, fee, resize, open_us[i], now
            )
            if code and not amb:
                amb, amb_bar = code, i
            if q > 0:
                tr_bar[ntr], tr_side[ntr], tr_qty[ntr] = i, pend_side[j], q
                tr_price[ntr], tr_fee[ntr], tr_kind[ntr] = price, paid, pend_kind[j]
                ntr += 1
        pending = 0
        # risk bookkeeping and forced exits
        if status == PAUSED and now >= paused_until:
            status = RUNNING
        exit_kind = -1
        if status == RUNNING:
            eq = m[0] + m[1] * c
            d = now // DAY_US
            if d != day:
                day = d
                day_start = eq
            if math.isnan(peak) or eq > peak:
                peak = eq
            hit = 0
            if not math.isnan(max_drawdown) and peak > 0:
                dd = (peak - eq) / peak * 100
                if abs(dd - max_drawdown) <= PCT_MARGIN and not amb:
                    amb, amb_bar = 3, i
                if dd >= max_drawdown:
                    hit = 1
            if hit == 0 and not math.isnan(daily_loss) and day_start > 0:
                loss = (day_start - eq) / day_start * 100
                if abs(loss - daily_loss) <= PCT_MARGIN and not amb:
                    amb, amb_bar = 4, i
                if loss >= daily_loss:
                    paused_until = (d + 1) * DAY_US
                    status = PAUSED
                    hit = 2
            if hit == 1:
                status = STOPPED
                if m[1] > 0:
                    exit_kind = DRAWDOWN
            elif hit == 0 and m[1] > 0:
                avg = m[2] / m[1]
                change = (c - avg) / avg * 100 if avg > 0 else 0.0
                if not math.isnan(stop_loss):
                    if abs(change + stop_loss) <= PCT_MARGIN and not amb:
                        amb, amb_bar = 1, i
                    if change <= -stop_loss:
                        exit_kind = STOP_LOSS
                if exit_kind < 0 and not math.isnan(take_profit):
                    if abs(change - take_profit) <= PCT_MARGIN and not amb:
                        amb, amb_bar = 2, i
                    if change >= take_profit:
                        exit_kind = TAKE_PROFIT
                if exit_kind < 0 and max_hold_us >= 0 and now - t[0] >= max_hold_us:
                    exit_kind = MAX_HOLD
        if exit_kind >= 0:
            if fill_close:
                price = c - c * slip
                q, paid, _ = _fill(m, t, signals.SELL, m[1], False, price, fee, resize, now, now)
                if q > 0:
                    tr_bar[ntr], tr_side[ntr], tr_qty[ntr] = i, signals.SELL, q
                    tr_price[ntr], tr_fee[ntr], tr_kind[ntr] = price, paid, exit_kind
                    ntr += 1
            else:
                pend_side[pending], pend_qty[pending] = signals.SELL, m[1]
                pend_whole[pending], pend_kind[pending] = False, exit_kind
                pending += 1
        # the agent decides when due
        if status == RUNNING and (not decided or now - last_decided >= interval_us):
            decided = True
            last_decided = now
            held = m[1] > 0
            sig = decide(kind, closes, i, held, p1, p2, lo, hi, need, lookback, fa, fb, tol_extra)
            if sig == signals.BUY and m[0] <= 0:
                sig = signals.HOLD  # no buying power
            if sig != signals.HOLD and cooldown_us > 0 and t[1] >= 0 and now - t[1] < cooldown_us:
                sig = signals.HOLD  # rejected: cooldown
            if sig != signals.HOLD:
                if sig == signals.BUY:
                    whole = whole_buy
                    q = m[0] / (c * (1 + fee)) if whole else m[0] * alloc_frac / c
                else:
                    whole = True
                    q = m[1]
                notional = q * c
                if min_notional > 0 and _near(notional, min_notional) and not amb:
                    amb, amb_bar = 5, i
                if notional < min_notional:
                    sig = signals.HOLD  # rejected: below the minimum order
            if sig != signals.HOLD:
                if fill_close:
                    price = c + c * slip if sig == signals.BUY else c - c * slip
                    q, paid, code = _fill(m, t, sig, q, whole, price, fee, resize, now, now)
                    if code and not amb:
                        amb, amb_bar = code, i
                    if q > 0:
                        tr_bar[ntr], tr_side[ntr], tr_qty[ntr] = i, sig, q
                        tr_price[ntr], tr_fee[ntr], tr_kind[ntr] = price, paid, BRAIN
                        ntr += 1
                else:
                    pend_side[pending], pend_qty[pending] = sig, q
                    pend_whole[pending], pend_kind[pending] = whole, BRAIN
                    pending += 1
        equity[i] = m[0] + m[1] * c
    return (
        ntr, tr_bar, tr_side, tr_qty, tr_price, tr_fee, tr_kind, equity, status, amb, amb_bar
    )  # fmt: skip
