"""Performance metrics of a backtest, from its equity curve and its trades.

The equity curve has one value per bar, marked to the bar's close, preceded by the starting
capital (so ``n`` bars give ``n + 1`` values and ``n`` simple returns). Annualised figures use
``periods_per_year`` = one year (365 days: crypto trades every day) divided by the bar period,
e.g. 525,600 for 1-minute bars. The ratios follow empyrical's definitions (risk-free rate 0):

- total return ``E_n / E_0 - 1``; CAGR ``(E_n / E_0) ** (periods_per_year / n) - 1``;
- annualised volatility ``std(r, ddof=1) * sqrt(periods_per_year)``;
- Sharpe ``mean(r) / std(r, ddof=1) * sqrt(periods_per_year)``;
- Sortino ``mean(r) * periods_per_year / (sqrt(mean(min(r, 0)²)) * sqrt(periods_per_year))``;
- Sharpe and Sortino are annualised only when the returns span at least a day
  (:data:`ANNUALISE_FROM`); a shorter run states them per period (``periods_per_year`` taken
  as 1), since scaling two hours of minute returns by sqrt(525,600) extrapolates them about
  4,000-fold. ``ratio_basis`` in the metrics says which (see :func:`ratio_basis`);
- max drawdown ``min(E / running_max(E) - 1)`` (negative, the start included); Calmar
  ``CAGR / |max drawdown|``;
- max drawdown duration: the longest stretch from a peak until equity is back at or above it
  (or until the end when it never recovers), in bars and in seconds.

Trades are grouped into round trips per agent and symbol: from flat to flat. A round trip's P&L
is its sells' proceeds net of fees minus its buys' cost including fees; an open position at the
end is not a round trip. Win rate, profit factor and the average trade are over round trips.
Exposure is the share of bars that end with a position open.

A ratio that is undefined (no variation, no losing round trip, no round trip at all...) is None.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from phantomex.domain.direct_init import direct_init
from phantomex.serialize import iso

__all__ = [
    "ANNUALISE_FROM",
    "YEAR",
    "Drawdown",
    "RatioBasis",
    "RoundTrip",
    "TradeRecord",
    "TradeTotals",
    "annual_volatility",
    "cagr",
    "compute_metrics",
    "floats_of",
    "max_drawdown",
    "monthly_returns",
    "periods_per_year",
    "ratio_basis",
    "returns_from_equity",
    "round_trips",
    "sharpe",
    "sortino",
    "trade_totals",
]

YEAR = timedelta(days=365)
#: Sharpe and Sortino of returns spanning less than this are stated per period, not annualised.
ANNUALISE_FROM = timedelta(days=1)
ZERO = Decimal(0)
FloatArray = npt.NDArray[np.float64]


@direct_init  # built for every trade of a backtest's result
@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One fill of a backtest."""

    symbol: str
    side: str  # "buy" or "sell"
    quantity: Decimal
    price: Decimal
    fee: Decimal
    time: datetime
    agent: str = ""

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.price

    def to_json(self, *, with_agent: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"agent": self.agent} if with_agent else {}
        out.update(
            symbol=self.symbol,
            side=self.side,
            quantity=format(self.quantity, "f"),
            price=format(self.price, "f"),
            fee=format(self.fee, "f"),
            time=iso(self.time),
        )
        return out


@direct_init
@dataclass(frozen=True, slots=True)
class RoundTrip:
    """A position from flat to flat on one symbol."""

    agent: str
    symbol: str
    entry_time: datetime
    exit_time: datetime
    cost: Decimal  # buys, fees included
    proceeds: Decimal  # sells, net of fees
    fees: Decimal

    @property
    def pnl(self) -> Decimal:
        return self.proceeds - self.cost

    @property
    def ret(self) -> float:
        return float(self.pnl / self.cost) if self.cost else math.nan


@dataclass(frozen=True, slots=True)
class Drawdown:
    depth: float  # min(E / peak - 1), <= 0
    peak: int  # index of the peak before the deepest point
    trough: int
    longest_bars: int  # the longest time under water, in bars
    longest_start: int  # its peak index
    longest_end: int  # the index where it recovered (or the last index)


def periods_per_year(period: timedelta) -> float:
    """Bars per year for bars of ``period`` (525,600 for 1 minute)."""
    if period <= timedelta(0):
        raise ValueError(f"the bar period must be positive, got {period}")
    return YEAR / period


@dataclass(frozen=True, slots=True)
class RatioBasis:
    """How Sharpe and Sortino are scaled: annualised, or per period of ``period``."""

    period: timedelta
    span: timedelta  # what the returns cover
    annualised: bool

    @property
    def scale(self) -> float:
        """The periods per year of the ratios' formulas: the real ones, or 1 per period."""
        return periods_per_year(self.period) if self.annualised else 1.0

    @property
    def label(self) -> str:
        """ "annualised from 1-minute returns" or "per 1-minute period (2 h of returns)"."""
        if self.annualised:
            return f"annualised from {_duration(self.period, adjective=True)} returns"
        per = _duration(self.period, adjective=True)
        return f"per {per} period ({_duration(self.span)} of returns)"

    def to_json(self) -> dict[str, Any]:
        return {
            "annualised": self.annualised,
            "period_seconds": self.period.total_seconds(),
            "span_seconds": self.span.total_seconds(),
            "scale": self.scale,
            "label": self.label,
        }


def ratio_basis(period: timedelta, periods: int) -> RatioBasis:
    """The basis of Sharpe and Sortino over ``periods`` returns of ``period`` each: annualised
    when they span at least :data:`ANNUALISE_FROM`, else per period."""
    periods_per_year(period)  # validates the period
    span = period * max(periods, 0)
    return RatioBasis(period, span, span >= ANNUALISE_FROM)


_UNITS = ((86400, "day", "d"), (3600, "hour", "h"), (60, "minute", "min"))


def _duration(d: timedelta, *, adjective: bool = False) -> str:
    """60 s -> "1-minute" (adjective) or "1 min"; 7,200 s -> "2 h"; 90 s -> "1.5 min"."""
    seconds = d.total_seconds()
    size, word, short = next((u for u in _UNITS if seconds >= u[0]), (1, "second", "s"))
    n = f"{seconds / size:.2f}".rstrip("0").rstrip(".")
    return f"{n}-{word}" if adjective else f"{n} {short}"


#: From this many values on, :func:`floats_of` parses them with Arrow (below: one by one).
ARROW_FROM = 2048


def floats_of(values: Sequence[Decimal]) -> FloatArray:
    """``float`` of each Decimal, the same bits. CPython's ``float(d)`` parses ``str(d)`` with
    its correctly rounded ``strtod``, slow on long texts (~0.5-1 µs for the 28 digits of an
    equity); Arrow's parser (fast_float) also returns the nearest float, ties to even, about
    five times faster, so many values are parsed by it. A value it does not parse to a finite
    float (not finite, or beyond float range) is converted by ``float`` itself."""
    if len(values) < ARROW_FROM:
        return np.fromiter(map(float, values), np.float64, len(values))
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = pa.array(list(map(str, values)), pa.string())
    try:
        out: FloatArray = pc.cast(texts, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return np.fromiter(map(float, values), np.float64, len(values))
    odd = np.flatnonzero(~np.isfinite(out))
    if odd.size:
        out = out.copy()  # Arrow's own buffer is read-only
        out[odd] = [float(values[i]) for i in odd.tolist()]
    return out


def returns_from_equity(equity: Sequence[float] | FloatArray) -> FloatArray:
    """Simple returns ``E[i] / E[i-1] - 1`` of an equity curve."""
    e = np.asarray(equity, dtype=np.float64)
    if e.size < 2:
        return np.empty(0, dtype=np.float64)
    r = np.divide(e[1:], e[:-1])
    r -= 1.0  # in place: one array of a million returns, not two
    return r


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def cagr(equity: Sequence[float] | FloatArray, ppy: float) -> float | None:
    e = np.asarray(equity, dtype=np.float64)
    n = e.size - 1
    if n < 1 or e[0] <= 0:
        return None
    growth = e[-1] / e[0]
    if growth <= 0:
        return -1.0
    with np.errstate(over="ignore"):
        return _finite(float(np.power(growth, ppy / n) - 1.0))


def annual_volatility(returns: FloatArray, ppy: float) -> float | None:
    if returns.size < 2:
        return None
    return _volatility(float(np.std(returns, ddof=1)), ppy)


def sharpe(returns: FloatArray, ppy: float) -> float | None:
    if returns.size < 2:
        return None
    return _sharpe(float(np.mean(returns)), float(np.std(returns, ddof=1)), ppy)


def sortino(returns: FloatArray, ppy: float) -> float | None:
    if returns.size < 2:
        return None
    return _sortino(returns, float(np.mean(returns)), ppy)


def _volatility(sd: float, ppy: float) -> float | None:
    return _finite(sd * math.sqrt(ppy))


def _sharpe(mean: float, sd: float, ppy: float) -> float | None:
    if sd == 0 or not math.isfinite(sd):
        return None
    return _finite(mean / sd * math.sqrt(ppy))


def _sortino(returns: FloatArray, mean: float, ppy: float) -> float | None:
    below = np.minimum(returns, 0.0)
    np.square(below, out=below)  # in place: one temporary array, not two
    downside = math.sqrt(float(np.mean(below))) * math.sqrt(ppy)
    if downside == 0:
        return None
    return _finite(mean * ppy / downside)


def max_drawdown(equity: Sequence[float] | FloatArray) -> Drawdown:
    """The deepest drawdown and the longest time under water of an equity curve."""
    e = np.asarray(equity, dtype=np.float64)
    if e.size == 0:
        return Drawdown(0.0, 0, 0, 0, 0, 0)
    peaks = np.maximum.accumulate(e)
    dd = np.divide(e, peaks)
    dd -= 1.0
    trough = int(np.argmin(dd))
    depth = float(dd[trough])
    peak = int(np.argmax(e[: trough + 1])) if depth < 0 else trough
    # Time under water: from the last new high to the first value back at or above it. The
    # marks are where equity is at or above the previous peak; a gap of more than one bar
    # between two marks (or after the last one) was spent under water.
    marks = np.concatenate(([0], np.flatnonzero(e[1:] >= peaks[:-1]) + 1))
    gaps = np.diff(marks)
    longest, longest_start, longest_end = 0, 0, 0
    if gaps.size and gaps.max() > 1:
        k = int(np.argmax(gaps))  # the first of the longest
        longest, longest_start, longest_end = int(gaps[k]), int(marks[k]), int(marks[k + 1])
    last = int(marks[-1])
    if e.size - 1 - last > longest:
        longest, longest_start, longest_end = e.size - 1 - last, last, e.size - 1
    return Drawdown(depth, peak, trough, longest, longest_start, longest_end)


def round_trips(trades: Iterable[TradeRecord]) -> list[RoundTrip]:
    """Closed round trips (flat to flat), per agent and symbol, in the order they closed."""
    return [RoundTrip(*trip) for trip in _closed(trades)]


_Trip = tuple[str, str, datetime, datetime, Decimal, Decimal, Decimal]


def _closed(trades: Iterable[TradeRecord]) -> list[_Trip]:
    """The fields of each :class:`RoundTrip` of ``trades``, in the order they closed."""
    # per open position: [quantity, cost, proceeds, fees, entry time] (a list: this loop runs
    # once per trade of a report, tens of thousands of times)
    open_: dict[tuple[str, str], list[Any]] = {}
    done: list[_Trip] = []
    for t in trades:
        key = (t.agent, t.symbol)
        cur = open_.get(key)
        fee = t.fee
        if t.side == "buy":
            if cur is None:
                cur = open_[key] = [ZERO, ZERO, ZERO, ZERO, t.time]
            cur[0] += t.quantity
            cur[1] += t.quantity * t.price + fee
            cur[3] += fee
            continue
        if cur is None:  # a sell without a recorded entry: nothing to pair it with
            continue
        cur[0] -= t.quantity
        cur[2] += t.quantity * t.price - fee
        cur[3] += fee
        if cur[0] <= 0:
            done.append((t.agent, t.symbol, cur[4], t.time, cur[1], cur[2], cur[3]))
            del open_[key]
    return done


@dataclass(frozen=True, slots=True)
class TradeTotals:
    """What the metrics take from the trades: how many, each round trip's P&L and cost (in
    the order they closed) and the fees of every trade."""

    trades: int
    pnls: list[Decimal]
    costs: list[Decimal]
    fees: Decimal


def trade_totals(trades: Sequence[TradeRecord]) -> TradeTotals:
    """:class:`TradeTotals` of trade records (round trips by :func:`round_trips`)."""
    trips = _closed(trades)  # their fields: no RoundTrip objects to build
    return TradeTotals(
        len(trades),
        [proceeds - cost for _, _, _, _, cost, proceeds, _ in trips],
        [cost for _, _, _, _, cost, _, _ in trips],
        sum(map(_FEE, trades), ZERO),
    )


_FEE = attrgetter("fee")


def monthly_returns(
    times: Sequence[datetime], equity: Sequence[float] | FloatArray
) -> dict[tuple[int, int], float]:
    """Return of each calendar month (UTC): its last equity over the previous month's last (or
    the starting capital) minus 1. ``times[i]`` is when ``equity[i]`` was marked."""
    e = np.asarray(equity, dtype=np.float64)
    out: dict[tuple[int, int], float] = {}
    if e.size < 2:
        return out
    last_of: dict[tuple[int, int], int] = {}
    for i in range(1, e.size):
        last_of[(times[i].year, times[i].month)] = i
    prev = 0
    for month, i in last_of.items():
        out[month] = float(e[i] / e[prev] - 1.0)
        prev = i
    return out


def _share(flags: Sequence[bool] | npt.NDArray[np.bool_]) -> float:
    """The share of true flags."""
    if isinstance(flags, np.ndarray):
        return int(np.count_nonzero(flags)) / flags.size
    return sum(map(bool, flags)) / len(flags)


def compute_metrics(
    equity: Sequence[float] | Sequence[Decimal] | FloatArray,
    *,
    period: timedelta,
    trades: Sequence[TradeRecord] = (),
    in_market: Sequence[bool] | npt.NDArray[np.bool_] | None = None,
    totals: TradeTotals | None = None,
    floats: Sequence[float] | FloatArray | None = None,
) -> dict[str, Any]:
    """Every metric of the module docstring, JSON-ready (money as decimal strings).

    ``equity``: starting capital then one value per bar; ``in_market[i]``: whether bar ``i``
    ended with a position (``len(equity) - 1`` values); ``totals``: what the trades give the
    metrics, when the caller has it without trade records (otherwise from ``trades``);
    ``floats``: ``float`` of each equity value, when the caller has them."""
    if floats is not None:
        e = np.asarray(floats, dtype=np.float64)
    elif isinstance(equity, np.ndarray):
        e = np.asarray(equity, dtype=np.float64)  # read, never written: no copy
    elif equity and isinstance(equity[0], Decimal):
        e = floats_of(equity)  # type: ignore[arg-type]
    else:
        e = np.fromiter(map(float, equity), dtype=np.float64, count=len(equity))
    ppy = periods_per_year(period)
    r = returns_from_equity(e)
    basis = ratio_basis(period, r.size)
    dd = max_drawdown(e)
    growth = cagr(e, ppy)
    several = r.size >= 2  # returns enough for the ratios
    mean = float(np.mean(r)) if several else math.nan  # once for Sharpe and Sortino
    sd = float(np.std(r, ddof=1)) if several else math.nan  # once for volatility and Sharpe
    if totals is None:
        totals = trade_totals(trades)
    pnls = totals.pnls
    returns = [float(p / c) if c else math.nan for p, c in zip(pnls, totals.costs, strict=True)]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    gross_profit = sum(wins, ZERO)
    gross_loss = -sum(losses, ZERO)
    start = Decimal(str(equity[0])) if not isinstance(equity[0], Decimal) else equity[0]
    end = Decimal(str(equity[-1])) if not isinstance(equity[-1], Decimal) else equity[-1]
    calmar = growth / abs(dd.depth) if growth is not None and dd.depth < 0 else None
    bars = e.size - 1
    return {
        "bars": bars,
        "periods_per_year": ppy,
        "start_equity": format(start, "f"),
        "final_equity": format(end, "f"),
        "net_profit": format(end - start, "f"),
        "total_return": float(e[-1] / e[0] - 1.0) if e.size and e[0] else None,
        "cagr": growth,
        "annual_volatility": _volatility(sd, ppy) if several else None,
        "sharpe": _sharpe(mean, sd, basis.scale) if several else None,
        "sortino": _sortino(r, mean, basis.scale) if several else None,
        "ratio_basis": basis.to_json(),
        "calmar": _finite(calmar) if calmar is not None else None,
        "max_drawdown": dd.depth,
        "max_drawdown_duration_bars": dd.longest_bars,
        "max_drawdown_duration_seconds": dd.longest_bars * period.total_seconds(),
        "trades": totals.trades,
        "round_trips": len(pnls),
        "win_rate": len(wins) / len(pnls) if pnls else None,
        "profit_factor": float(gross_profit / gross_loss) if gross_loss > 0 else None,
        "average_trade": format(sum(pnls, ZERO) / len(pnls), "f") if pnls else None,
        "average_trade_return": float(np.mean(returns)) if pnls else None,
        "exposure": _share(in_market) if in_market is not None and len(in_market) else None,
        "fees_paid": format(totals.fees, "f"),
    }
