"""What a session records while it runs: each competitor's equity, marked at every sample, and
the buy-and-hold and cash benchmarks over the same marks; turned into results on demand."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from phantomex.kernel.runtime import Kernel
from phantomex.research.backtest import agent_trades
from phantomex.research.metrics import TradeRecord, compute_metrics
from phantomex.serialize import iso, jsonable

BUY_AND_HOLD = "buy-and-hold"
CASH = "cash"
KEPT_DECISIONS = 100  # the latest decisions that were not holds, with their reasoning


@dataclass
class Competitor:
    name: str
    agent_id: str  # the agent's id in the kernel it runs on
    start: Decimal
    equity: list[Decimal] = field(default_factory=list)
    in_market: list[bool] = field(default_factory=list)


class Tracker:
    """Samples the competitors of one session on ``kernel``. The first sample is the start:
    every wallet holds the same cash and the benchmarks buy at the marks of that moment."""

    def __init__(
        self,
        kernel: Kernel,
        competitors: list[Competitor],
        symbols: list[str],
        cash: Decimal,
        fee_bps: Decimal,
        start: datetime,
    ) -> None:
        self.kernel = kernel
        self.competitors = competitors
        self.symbols = symbols
        self.cash = cash
        self.fee = fee_bps / Decimal(10_000)
        self.first_marks = {s: kernel.marks[s] for s in symbols}
        self.times: list[datetime] = [start]
        self.bh: list[Decimal] = [cash]
        for c in competitors:
            c.equity.append(c.start)

    def sample(self, time: datetime) -> None:
        self.times.append(time)
        marks = self.kernel.marks
        for c in self.competitors:
            wallet = self.kernel.wallet(c.agent_id)
            c.equity.append(wallet.equity(marks))
            c.in_market.append(bool(wallet.positions))
        growth = sum((marks[s] / self.first_marks[s] for s in self.symbols), Decimal(0))
        self.bh.append(self.cash * (1 - self.fee) * growth / len(self.symbols))

    def pnl(self) -> dict[str, dict[str, Any]]:
        """Each competitor's (and benchmark's) current equity and P&L: the running figures."""
        out = {}
        for name, start, last in self._curves():
            out[name] = {
                "equity_now": format(last[-1], "f"),
                "pnl": format(last[-1] - start, "f"),
                "return_pct": float((last[-1] / start - 1) * 100),
            }
        return out

    def _curves(self) -> list[tuple[str, Decimal, list[Decimal]]]:
        curves = [(c.name, c.start, c.equity) for c in self.competitors]
        return [
            *curves,
            (BUY_AND_HOLD, self.cash, self.bh),
            (CASH, self.cash, [self.cash] * len(self.bh)),
        ]

    def results(self, period: timedelta) -> dict[str, dict[str, Any]]:
        """Result fields of every session agent row, keyed by name (metrics from
        :func:`compute_metrics` over the samples)."""
        out: dict[str, dict[str, Any]] = {}
        for c in self.competitors:
            agent = self.kernel.find(c.agent_id)
            trades = self._trades(c)
            decisions, holds, reasons = self._decisions(c)
            metrics = _metrics(c.equity, period, trades, c.in_market)
            metrics["hold_reasons"] = reasons
            out[c.name] = {
                "equity": [format(v, "f") for v in c.equity],
                "trades": [t.to_json() for t in trades],
                "decisions": decisions,
                "holds": holds,
                "metrics": metrics,
                "status": agent.status.value if agent else "deleted",
            }
        flat = [self.cash] * len(self.bh)
        for name, curve in ((BUY_AND_HOLD, self.bh), (CASH, flat)):
            out[name] = {
                "equity": [format(v, "f") for v in curve],
                "metrics": _metrics(curve, period, [], None),
                "status": "benchmark",
            }
        return out

    def _trades(self, c: Competitor) -> list[TradeRecord]:
        return agent_trades(self.kernel, c.agent_id, c.name)

    def _decisions(self, c: Competitor) -> tuple[list[dict[str, Any]], int, list[list[Any]]]:
        records = self.kernel.decisions(c.agent_id, limit=10**9)
        records.sort(key=lambda d: d.time)
        acted = [d for d in records if d.action != "hold"]
        holds = [d.reasoning[:160] for d in records if d.action == "hold"]
        kept = [
            jsonable(
                {
                    "time": iso(d.time),
                    "action": d.action,
                    "symbol": d.symbol,
                    "status": d.status,
                    "price": d.price,
                    "quantity": d.quantity,
                    "reasoning": d.reasoning[:1000],
                    "reason": d.reason,
                    "source": d.source,
                }
            )
            for d in acted[-KEPT_DECISIONS:]
        ]
        common = [[text, n] for text, n in Counter(holds).most_common(3)]
        return kept, len(holds), common


def _metrics(
    equity: list[Decimal],
    period: timedelta,
    trades: list[TradeRecord],
    in_market: list[bool] | None,
) -> dict[str, Any]:
    if len(equity) < 2:
        equity = [equity[0], equity[0]]
    return compute_metrics(equity, period=period, trades=trades, in_market=in_market)
