"""Blind backtests: hide from a model what it may remember of the market from its training.

Before the run, symbols are renamed (``BTC`` → ``ASSET1``), times shifted by a whole number of
weeks into the far future (weekday and time of day are kept: they carry no memory, but market
rhythm), and each symbol's prices multiplied by a random factor (volumes divided by it, so
notional values stay). Cash is untouched, so wallets, equity and every return-based metric are
the same as on the real data; after the run, trades and times are mapped back: prices divided by
the factor, quantities multiplied by it. Those two are exact up to Decimal's 28 significant
digits (the all-in quantity is a quotient of cash by a scaled price)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from phantomex.domain.models import Bar
from phantomex.research.metrics import TradeRecord
from phantomex.research.spec import BacktestConfig, BacktestResult

WEEK = timedelta(weeks=1)


@dataclass(frozen=True)
class BlindKey:
    """How the data was disguised: alias per symbol, time shift, price factor per symbol."""

    aliases: dict[str, str]
    shift: timedelta
    scale: dict[str, Decimal]

    @classmethod
    def make(cls, symbols: Sequence[str], seed: int | None = None) -> BlindKey:
        rng = random.Random(seed)
        order = list(symbols)
        rng.shuffle(order)  # the alias numbers don't follow the order the user gave
        aliases = {sym: f"ASSET{i + 1}" for i, sym in enumerate(order)}
        shift = WEEK * rng.randint(150 * 52, 250 * 52)  # 150 to 250 years ahead
        scale = {sym: Decimal(f"{rng.randint(11, 99)}E{rng.randint(-4, 1)}") for sym in symbols}
        return cls(aliases, shift, scale)

    def real(self, alias: str) -> str:
        return {a: s for s, a in self.aliases.items()}[alias]


def blind_bars(data: Mapping[str, Sequence[Bar]], key: BlindKey) -> dict[str, list[Bar]]:
    """The bars as the model will see them."""
    out: dict[str, list[Bar]] = {}
    for sym, bars in data.items():
        k, alias = key.scale[sym], key.aliases[sym]
        out[alias] = [
            Bar(
                alias,
                b.time + key.shift,
                b.open * k,
                b.high * k,
                b.low * k,
                b.close * k,
                b.volume / k,
            )
            for b in bars
        ]
    return out


def blind_config(config: BacktestConfig, key: BlindKey) -> BacktestConfig:
    """``config`` on disguised data: agents trade the aliases, the window is shifted."""
    agents = [
        a.model_copy(update={"symbols": [key.aliases[s] for s in a.symbols]}) for a in config.agents
    ]
    return replace(
        config,
        data=blind_bars(config.data, key),
        agents=agents,
        start=None if config.start is None else config.start + key.shift,
        end=None if config.end is None else config.end + key.shift,
        sources=[f"{s} (blinded)" for s in config.sources],
    )


def unblind_result(result: BacktestResult, real: BacktestConfig, key: BlindKey) -> BacktestResult:
    """A blind run's result in real symbols, times and prices (metrics are unchanged)."""
    agents = [
        replace(
            a,
            spec=spec,
            trades=[_unblind_trade(t, key) for t in a.trades],
            decisions=[
                {**d, "time": d["time"] - key.shift, "symbol": _real_or(d.get("symbol"), key)}
                for d in a.decisions
            ],
            llm=_unblind_llm(a.llm, key),
        )
        for a, spec in zip(result.agents, real.agents, strict=True)
    ]
    data = {key.real(alias): bars for alias, bars in result.data.items()}
    return replace(
        result,
        config=real,
        data={
            sym: [b for b in real.data[sym] if _kept(b, bars, key)] for sym, bars in data.items()
        },
        times=[t - key.shift for t in result.times],
        agents=agents,
    )


def _unblind_llm(figures: dict[str, Any] | None, key: BlindKey) -> dict[str, Any] | None:
    """An LLM agent's figures with its answers in real symbols and times (the reasoning is
    the model's own words about the disguised market, kept as they were)."""
    if figures is None:
        return None
    answers = [
        {
            **a,
            "time": a["time"] - key.shift if a.get("time") else a.get("time"),
            "symbol": _real_or(a.get("symbol"), key),
        }
        for a in figures["answers"]
    ]
    return {**figures, "answers": answers}


def _unblind_trade(t: TradeRecord, key: BlindKey) -> TradeRecord:
    sym = key.real(t.symbol)
    k = key.scale[sym]
    return replace(
        t, symbol=sym, price=t.price / k, quantity=t.quantity * k, time=t.time - key.shift
    )


def _real_or(alias: object, key: BlindKey) -> object:
    return key.real(alias) if isinstance(alias, str) and alias in key.aliases.values() else alias


def _kept(bar: Bar, blinded: Sequence[Bar], key: BlindKey) -> bool:
    """Whether ``bar`` is inside the replayed (blinded) window."""
    return bool(blinded) and blinded[0].time - key.shift <= bar.time <= blinded[-1].time - key.shift
