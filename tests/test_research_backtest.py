"""`phantomex backtest` and ``run_backtest``: the spec's reference engine reproduced on real bars,
the JSON output, determinism, several agents, time windows, reports and errors."""

from __future__ import annotations

import csv
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.brains.llm.types import EndpointConfig
from phantomex.brains.registry import create_brain, strategy_names
from phantomex.cli.backtest import parse_assignments, parse_when
from phantomex.cli.backtest_command import register
from phantomex.domain.models import Bar
from phantomex.formatting import metric
from phantomex.formatting import quantity as fmt_quantity
from phantomex.market.columns import BarColumns
from phantomex.market.loaders import load_dataset
from phantomex.research.backtest import run_backtest
from phantomex.research.metrics import compute_metrics
from phantomex.research.report import write_report
from phantomex.research.spec import (
    BACKTEST_RISK,
    BacktestConfig,
    BacktestError,
    BacktestResult,
    agent_from_toml,
    load_data,
    resolve_strategy,
    strategy_agent,
)

FEE = Decimal("0.001")
CASH = Decimal(10_000)


@pytest.fixture(scope="module")
def btc() -> list[Bar]:
    return load_dataset("demo", ["BTC"])["BTC"]


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    register(app)
    return app


# -- the reference engine of shared/benchmarks/backtest-spec.md ---------------------------------
def sma_cross_signals(closes: np.ndarray, fast: int, slow: int) -> list[int]:
    """+1 on a cross up, -1 on a cross down, at bar t's close (plain arithmetic means)."""

    def sma(n: int) -> np.ndarray:
        out = np.full(closes.size, np.nan)
        for t in range(n - 1, closes.size):
            out[t] = closes[t - n + 1 : t + 1].mean()
        return out

    f, s = sma(fast), sma(slow)
    sig = [0] * closes.size
    for t in range(1, closes.size):
        if np.isnan(s[t - 1]):
            continue
        if f[t] > s[t] and f[t - 1] <= s[t - 1]:
            sig[t] = 1
        elif f[t] < s[t] and f[t - 1] >= s[t - 1]:
            sig[t] = -1
    return sig


def reference(
    bars: list[Bar], signal: list[int], *, next_open: bool = True
) -> tuple[list[tuple[str, datetime, Decimal, Decimal]], Decimal]:
    """All-in / all-out long-only fills at t+1's open (or t's close); equity marked to the
    last close."""
    cash, qty, trades = CASH, Decimal(0), []
    period = bars[1].time - bars[0].time
    for t in range(len(bars) - (1 if next_open else 0)):
        p = bars[t + 1].open if next_open else bars[t].close
        when = bars[t + 1].time if next_open else bars[t].time + period
        if signal[t] == 1 and qty == 0:
            qty = cash / (p * (1 + FEE))
            cash = Decimal(0)
            trades.append(("buy", when, p, qty))
        elif signal[t] == -1 and qty > 0:
            trades.append(("sell", when, p, qty))
            cash += qty * p - qty * p * FEE
            qty = Decimal(0)
    return trades, cash + qty * bars[-1].close


def _close(a: Decimal, b: Decimal, rel: str) -> bool:
    return abs(a - b) <= abs(b) * Decimal(rel)


@pytest.mark.parametrize(("n", "fill"), [(2000, "next_open"), (600, "close")])
def test_sma_cross_equals_the_reference_engine(btc: list[Bar], n: int, fill: Any) -> None:
    bars = btc[:n]
    closes = np.array([float(b.close) for b in bars])
    want, want_equity = reference(
        bars, sma_cross_signals(closes, 10, 30), next_open=fill == "next_open"
    )
    spec = strategy_agent("sma_cross", {"fast": 10, "slow": 30}, symbols=["BTC"])
    result = run_backtest(BacktestConfig(data={"BTC": bars}, agents=[spec], fill=fill))
    got = [(t.side, t.time, t.price, t.quantity) for t in result.trades]
    assert len(want) > 15
    assert [g[:3] for g in got] == [w[:3] for w in want]
    for g, w in zip(got, want, strict=True):
        assert _close(g[3], w[3], "1e-20")
    assert _close(result.final_equity, want_equity, "1e-6")
    assert result.bars == n
    assert len(result.agents[0].equity) == n + 1
    assert result.metrics["trades"] == len(want)


# -- the command ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def btc_csv(tmp_path_factory: pytest.TempPathFactory, btc: list[Bar]) -> Path:
    path = tmp_path_factory.mktemp("data") / "btc_1m.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time", "open", "high", "low", "close", "volume"])
        for b in btc[:400]:
            w.writerow([b.time.isoformat(), b.open, b.high, b.low, b.close, b.volume])
    return path


def _invoke(app: typer.Typer, *args: str) -> Any:
    return CliRunner().invoke(app, ["backtest", *args])


def test_json_output_is_complete_and_repeatable(app: typer.Typer, btc_csv: Path) -> None:
    args = ["--data", str(btc_csv), "--strategy", "sma_cross", "--param", "fast=5"]
    args += ["--param", "slow=20", "--json"]
    first = _invoke(app, *args)
    assert first.exit_code == 0, first.output
    second = _invoke(app, *args)
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert one.pop("elapsed_seconds") >= 0
    two.pop("elapsed_seconds")
    assert one == two
    assert one["bars"] == 400
    assert {"trades", "final_equity", "metrics", "bars", "config"} <= set(one)
    assert "agents" not in one
    trades = one["trades"]
    assert len(trades) > 10
    assert set(trades[0]) == {"symbol", "side", "quantity", "price", "fee", "time"}
    assert all(isinstance(trades[0][k], str) for k in ("quantity", "price", "fee"))
    assert trades[0]["time"].endswith("Z") and trades[0]["side"] == "buy"
    assert datetime.fromisoformat(trades[0]["time"]).tzinfo is not None
    # final equity = cash + qty x last close, rebuilt from the trades alone
    cash, qty = CASH, Decimal(0)
    for t in trades:
        q, p, fee = Decimal(t["quantity"]), Decimal(t["price"]), Decimal(t["fee"])
        assert fee == q * p * FEE
        cash, qty = (
            (cash - q * p - fee, qty + q) if t["side"] == "buy" else (cash + q * p - fee, qty - q)
        )
    last_close = Decimal(str(load_dataset("demo", ["BTC"])["BTC"][399].close))
    assert _close(Decimal(one["final_equity"]), cash + qty * last_close, "1e-20")
    m = one["metrics"]
    for key in (
        "total_return",
        "cagr",
        "annual_volatility",
        "sharpe",
        "sortino",
        "calmar",
        "max_drawdown",
        "max_drawdown_duration_bars",
        "win_rate",
        "profit_factor",
        "exposure",
        "trades",
        "average_trade",
        "fees_paid",
    ):
        assert key in m
    assert m["trades"] == len(trades)
    assert one["config"]["agents"][0]["params"] == {"ma": "sma", "fast": 5, "slow": 20}
    assert one["config"]["fill"] == "next_open"


def test_window_fill_costs_and_table_output(app: typer.Typer, btc_csv: Path) -> None:
    args = ["--data", f"XBT={btc_csv}", "--strategy", "rsi", "--param", "oversold=40"]
    args += ["--from", "2023-04-01T22:00", "--to", "2023-04-02T01:59", "--fill", "close"]
    args += ["--fee-bps", "5", "--slippage-bps", "2", "--cash", "500", "--json"]
    res = _invoke(app, *args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["bars"] == 240
    assert out["start"] == "2023-04-01T22:00:00Z" and out["end"] == "2023-04-02T02:00:00Z"
    assert out["config"]["symbols"] == ["XBT"]
    assert out["trades"] and all(t["symbol"] == "XBT" for t in out["trades"])
    t = out["trades"][0]
    q, p, fee = Decimal(t["quantity"]), Decimal(t["price"]), Decimal(t["fee"])
    assert fee == q * p * Decimal("0.0005")
    assert q * p + fee <= 500
    table = _invoke(app, *args[:-1])
    assert table.exit_code == 0, table.output
    assert "rsi" in table.stdout and "240 bars" in table.stdout
    m = out["metrics"]
    for value in (
        metric(m["final_equity"], "money"),  # $499.12, not 499.12
        metric(m["total_return"], "pct"),
        metric(m["fees_paid"], "money"),
    ):
        assert value in table.stdout, (value, table.stdout)


def _agent_file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_several_agents_with_a_report(app: typer.Typer, btc_csv: Path, tmp_path: Path) -> None:
    sma = _agent_file(
        tmp_path / "fast_sma.toml",
        'strategy = "sma_cross"\n[params]\nfast = 5\nslow = 20\n',
    )
    rsi = _agent_file(
        tmp_path / "rsi.toml",
        'name = "RSI 40-60"\nbrain = "rsi"\nallowance = "2500"\n'
        "[params]\noversold = 40\noverbought = 60\n[risk]\nmax_allocation_pct = 50\n",
    )
    report = tmp_path / "out" / "run.html"
    res = _invoke(
        app, "--data", str(btc_csv), "--agent", str(sma), "--agent", str(rsi), "--json",
        "--report", str(report),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    names = [a["name"] for a in out["agents"]]
    assert names == ["fast_sma", "RSI 40-60"]
    assert {t["agent"] for t in out["trades"]} == set(names)
    total = sum(Decimal(a["final_equity"]) for a in out["agents"])
    assert Decimal(out["final_equity"]) == total
    assert out["metrics"]["trades"] == len(out["trades"])
    assert out["config"]["agents"][1]["allowance"] == "2500"
    assert out["config"]["agents"][1]["risk"]["max_allocation_pct"] == "50"
    assert out["config"]["agents"][0]["risk"]["stop_loss_pct"] is None
    page = report.read_text(encoding="utf-8")
    for part in (
        "<svg",
        'id="comparison"',
        'id="prices"',
        'id="equity"',
        'id="drawdown"',
        'id="metrics"',
        'id="monthly"',
        'id="trades"',
        'id="config"',
        "fast_sma",
        "RSI 40-60",
        "Sharpe",
        "Apr",
        "&quot;fill&quot;: &quot;next_open&quot;",
    ):
        assert part in page, part
    assert page.count("<tr>") > len(out["trades"])
    assert f"<b>{metric(out['metrics']['final_equity'], 'money')}</b>" in page
    assert "$-" not in page  # a loss reads -$3.24
    sells = [t for t in out["trades"] if t["side"] == "sell"]
    assert f"<td>{fmt_quantity(sells[0]['quantity'])}</td>" in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")
    png = report.with_suffix(".png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000


def test_report_from_the_library(tmp_path: Path, btc: list[Bar]) -> None:
    spec = strategy_agent("train_of_trade", {"entry_drop_pct": 0.2, "take_profit_pct": 0.2},
                          symbols=["BTC"])  # fmt: skip
    result = run_backtest(BacktestConfig(data={"BTC": btc[:300]}, agents=[spec]))
    html_path, png_path = write_report(result, tmp_path / "r")
    assert html_path.name == "r.html" and png_path.name == "r.png"
    page = html_path.read_text(encoding="utf-8")
    assert "train_of_trade" in page and "Monthly returns" in page and "polyline" in page
    assert 'id="comparison"' not in page
    assert "Sharpe and Sortino: per 1-minute period (5 h of returns)." in page  # not annualised
    assert png_path.stat().st_size > 20_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "rsi"], "--data FILE or --dataset"),
        (["--data", "{csv}"], "--strategy NAME"),
        (["--dataset", "nope", "--strategy", "rsi"], "unknown dataset"),
        (["--dataset", "demo", "--symbols", "ZZZ", "--strategy", "rsi"], "ZZZ"),
        (["--data", "{csv}", "--symbols", "ETH", "--strategy", "rsi"], "no data for ETH"),
        (["--data", "{csv}", "--strategy", "magic"], "unknown strategy"),
        (["--data", "{csv}", "--strategy", "rsi", "--param", "x"], "key=value"),
        (["--data", "{csv}", "--strategy", "rsi", "--param", "period=1"], "period"),
        (["--data", "{csv}", "--strategy", "rsi", "--from", "2030-01-01"], "no bars"),
        (["--data", "{csv}", "--strategy", "rsi", "--to", "noon"], "ISO date"),
        (["--data", "{csv}", "--strategy", "rsi", "--risk", "cooldown=1"], "invalid risk"),
        (["--data", "{csv}", "--strategy", "rsi", "--cash", "-1"], "--cash"),
        (["--data", "missing.csv", "--strategy", "rsi"], "cannot read"),
    ],
)
def test_errors_are_one_clear_line(
    app: typer.Typer, btc_csv: Path, args: list[str], message: str
) -> None:
    res = _invoke(app, *[a.replace("{csv}", str(btc_csv)) for a in args], "--json")
    assert res.exit_code == 1
    assert message in res.stderr
    assert res.stdout == ""


# -- the library pieces ---------------------------------------------------------------------------
def test_a_backtest_agent_of_every_registered_strategy() -> None:
    llm = LLMRuntime([EndpointConfig(name="e", kind="ollama", base_url="http://127.0.0.1:9")])
    for name in strategy_names():
        params = {"endpoint": "e", "model": "m"} if name == "llm" else {}
        spec = strategy_agent(name, params, symbols=["BTC"])
        create_brain(spec.brain, spec.params, llm=llm)  # what run_backtest builds


def test_aliases_risk_and_toml(tmp_path: Path) -> None:
    assert resolve_strategy("sma_cross", {"fast": 3}) == ("momentum", {"ma": "sma", "fast": 3})
    assert resolve_strategy("rsi") == ("rsi", {})
    spec = strategy_agent("ema_cross", symbols=["btc"], risk={"stop_loss_pct": "2"})
    assert spec.brain == "momentum" and spec.params == {"ma": "ema"} and spec.symbols == ["BTC"]
    assert spec.risk.stop_loss_pct == Decimal(2)
    assert spec.risk.max_allocation_pct == BACKTEST_RISK.max_allocation_pct == 100
    bad = _agent_file(tmp_path / "bad.toml", 'brain = "rsi"\nmode = "advisory"\n')
    with pytest.raises(BacktestError, match="autonomous"):
        agent_from_toml(bad, symbols=["BTC"])
    broken = _agent_file(tmp_path / "broken.toml", "brain = \n")
    with pytest.raises(BacktestError, match="invalid TOML"):
        agent_from_toml(broken, symbols=["BTC"])
    with pytest.raises(BacktestError, match="brain"):
        agent_from_toml(_agent_file(tmp_path / "x.toml", "[params]\n"), symbols=["BTC"])


def test_load_data_and_dates(btc_csv: Path) -> None:
    data, sources = load_data([btc_csv], None, None)
    assert list(data) == ["BTC"] and len(data["BTC"]) == 400
    assert sources == [f"BTC={btc_csv}"]
    data, _ = load_data([], "demo", ["eth", "BTC"])
    assert list(data) == ["ETH", "BTC"]
    with pytest.raises(BacktestError, match="both"):
        load_data([btc_csv], "demo", ["BTC"])
    assert parse_when("2023-04-02", end=False) == datetime(2023, 4, 2, tzinfo=UTC)
    assert parse_when("2023-04-02", end=True) == datetime(2023, 4, 3, tzinfo=UTC)
    assert parse_when("2023-04-02T10:00", end=True) == datetime(
        2023, 4, 2, 10, tzinfo=UTC
    ) + timedelta(microseconds=1)
    assert parse_when("2023-04-02T12:00+02:00", end=False) == datetime(2023, 4, 2, 10, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_when("yesterday", end=False)
    assert parse_assignments(["a=1", "b=0.5", "c=sma", "d=none", "e=[1, 2]"], "x") == {
        "a": 1,
        "b": 0.5,
        "c": "sma",
        "d": None,
        "e": [1, 2],
    }
    assert parse_assignments(["p=0.1"], "x", numbers_as_text=True) == {"p": "0.1"}


def _every_bar_and_skipping(config: BacktestConfig) -> tuple[BacktestResult, BacktestResult]:
    """The same backtest visiting every bar and asking the brain each time (decisions recorded,
    so no event skipping) and with event skipping (lean)."""
    every_bar = run_backtest(dataclasses.replace(config, record_decisions=True))
    skipping = run_backtest(config)
    return every_bar, skipping


def _assert_same_run(every_bar: BacktestResult, skipping: BacktestResult) -> None:
    assert skipping.trades == every_bar.trades
    assert skipping.times == every_bar.times
    assert skipping.equity == every_bar.equity
    assert [a.in_market for a in skipping.agents] == [a.in_market for a in every_bar.agents]
    assert [a.status for a in skipping.agents] == [a.status for a in every_bar.agents]
    assert skipping.to_json()["trades"] == every_bar.to_json()["trades"]
    for run in (every_bar, skipping):  # the metrics are those of the exact equity curve
        for agent in run.agents:
            exact = compute_metrics(
                agent.equity,
                period=run.period,
                trades=agent.trades,
                in_market=agent.in_market,
                floats=[float(v) for v in agent.equity],  # CPython's own conversion
            )
            assert agent.metrics == exact


@pytest.mark.parametrize(
    ("strategy", "params"),
    [("sma_cross", {"fast": 10, "slow": 30}), ("ema_cross", {"fast": 5, "slow": 20}), ("rsi", {})],
)
def test_event_skipping_changes_nothing(btc: list[Bar], strategy: str, params: dict) -> None:
    """Event skipping (the kernel passes over the bars at which nothing can happen and asks the
    brain only where its vectorised signals flag, for the position it has) trades and marks
    exactly like a run that visits every bar and asks the brain each time; every action of the
    latter is on a bar flagged for the position it had."""
    data = {"BTC": btc[:1500]}
    spec = strategy_agent(strategy, params, symbols=["BTC"])
    every_bar, skipping = _every_bar_and_skipping(BacktestConfig(data=data, agents=[spec]))
    assert len(every_bar.trades) >= 6
    _assert_same_run(every_bar, skipping)
    closes = np.array([float(b.close) for b in data["BTC"]])
    brain = create_brain(spec.brain, spec.params)
    times = every_bar.times[1:]
    flagged = {
        held: {t for t, f in zip(times, brain.may_act(closes, held=held), strict=True) if f}
        for held in (False, True)
    }
    acted = [d for d in every_bar.agents[0].decisions if d["action"] != "hold"]
    assert acted
    for d in acted:
        assert d["time"] in flagged[d["action"] == "sell"], d
    assert len(flagged[False] | flagged[True]) < len(closes) / 2


@pytest.mark.parametrize(
    "risk",
    [
        {"stop_loss_pct": Decimal("0.3"), "take_profit_pct": Decimal("0.4")},
        {"max_hold_minutes": 45},
        {"max_drawdown_pct": Decimal("1.5"), "daily_loss_limit_pct": Decimal("0.4")},
        {"daily_loss_limit_pct": Decimal("0.2")},
    ],
    ids=["stop-take", "max-hold", "drawdown", "daily-loss"],
)
@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_event_skipping_keeps_risk_exits(btc: list[Bar], risk: dict, fill: str) -> None:
    """Risk exits still fire on the bar they would have without skipping: stop-loss and
    take-profit levels found by vectorised search, max-hold deadlines, the drawdown exit and
    the daily-loss pause."""
    data = {"BTC": btc[:3000]}
    spec = strategy_agent("rsi", {}, symbols=["BTC"], risk=risk)
    every_bar, skipping = _every_bar_and_skipping(
        BacktestConfig(data=data, agents=[spec], fill=fill)  # type: ignore[arg-type]
    )
    forced = [d for d in every_bar.agents[0].decisions if d["source"].startswith("risk:")]
    stopped = every_bar.agents[0].status != "running"
    assert forced or stopped, "the risk settings must act in this window"
    _assert_same_run(every_bar, skipping)


def test_event_skipping_with_several_symbols_and_agents(btc: list[Bar]) -> None:
    """Two agents over two symbols, one of which has gaps (a tick without its bar keeps its
    previous price): the same trades, equity and marks as visiting every bar."""
    eth = load_dataset("demo", ["ETH"])["ETH"][:2000]
    gappy = [b for i, b in enumerate(eth) if i % 7 not in (3, 4)]
    data = {"BTC": btc[:2000], "ETH": gappy}
    agents = [
        strategy_agent("sma_cross", {"fast": 5, "slow": 20}, symbols=["BTC", "ETH"], name="sma"),
        strategy_agent(
            "rsi", {}, symbols=["ETH"], name="rsi", risk={"take_profit_pct": Decimal("0.5")}
        ),
    ]
    every_bar, skipping = _every_bar_and_skipping(BacktestConfig(data=data, agents=agents))
    assert all(len(a.trades) >= 4 for a in every_bar.agents)
    _assert_same_run(every_bar, skipping)


@pytest.mark.parametrize("record", [False, True], ids=["skipping", "every-bar"])
def test_bars_as_columns_run_as_the_bar_list(btc: list[Bar], record: bool) -> None:
    """The kernel reads bars given as columns (``BarColumns``: the replay feed, the price
    guard's check and the event plan from the arrays, a ``Bar`` built only for the ticks it
    hands on) and runs exactly as on the same bars as a list: trades, times, equity, decisions."""
    eth = load_dataset("demo", ["ETH"])["ETH"][:2000]
    gappy = [b for i, b in enumerate(eth) if i % 7 not in (3, 4)]
    bars = {"BTC": btc[:2000], "ETH": gappy}
    agents = [
        strategy_agent("sma_cross", {"fast": 5, "slow": 20}, symbols=["BTC", "ETH"], name="sma"),
        strategy_agent(
            "rsi", {}, symbols=["ETH"], name="rsi", risk={"take_profit_pct": Decimal("0.5")}
        ),
    ]
    columns = {s: BarColumns.from_bars(s, b) for s, b in bars.items()}
    on_list = run_backtest(BacktestConfig(data=bars, agents=agents, record_decisions=record))
    on_columns = run_backtest(BacktestConfig(data=columns, agents=agents, record_decisions=record))
    assert all(len(a.trades) >= 4 for a in on_list.agents)
    _assert_same_run(on_list, on_columns)
    assert [a.decisions for a in on_columns.agents] == [a.decisions for a in on_list.agents]
    assert [(t.quantity, t.fee) for t in on_columns.trades] == [
        (t.quantity, t.fee) for t in on_list.trades
    ]


def test_event_skipping_marks_past_invalid_closes(btc: list[Bar]) -> None:
    """Bars with an invalid close (zero, NaN) in the data: the kernel never marks a wallet at
    them, with or without skipping (equity keeps the last valid close)."""
    bars = list(btc[:1500])
    for i in range(200, 1500, 97):
        bad = Decimal(0) if i % 2 else Decimal("NaN")
        b = bars[i]
        bars[i] = Bar(b.symbol, b.time, b.open, b.high, b.low, bad, b.volume)
    spec = strategy_agent("rsi", {}, symbols=["BTC"])
    every_bar, skipping = _every_bar_and_skipping(BacktestConfig(data={"BTC": bars}, agents=[spec]))
    assert every_bar.trades
    _assert_same_run(every_bar, skipping)
    assert all(e.is_finite() and e > 0 for e in skipping.equity)


def test_event_skipping_visits_the_tick_after_a_close_fill_puts_equity_past_a_limit() -> None:
    """At the close, a sell's fee and slippage come after the tick's risk check: the flat
    agent's equity is already past its drawdown limit, and the next tick's check stops it.
    Event skipping must visit that tick (it skipped every flat tick: the agent never stopped)."""
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    closes = ["100", "99.5", "99", "110"] + ["110"] * 10  # RSI(2) buys at 99, sells at 110
    bars = [
        Bar("X", t0 + timedelta(minutes=i), *(Decimal(c),) * 4, Decimal(1))
        for i, c in enumerate(closes)
    ]
    agent = strategy_agent(
        "rsi",
        {"period": 2, "oversold": 30, "overbought": 70},
        symbols=["X"],
        risk={"max_drawdown_pct": "1.9"},  # the sell's 2 % of costs cross it once flat
    )
    config = BacktestConfig(
        data={"X": bars},
        agents=[agent],
        fee_bps=Decimal(100),
        slippage_bps=Decimal(100),
        fill="close",
    )
    skipping = run_backtest(config)
    visiting = run_backtest(dataclasses.replace(config, record_decisions=True))  # no skipping
    assert [t.side for t in skipping.trades] == ["buy", "sell"]
    assert visiting.agents[0].status == "stopped"
    assert skipping.agents[0].status == "stopped"
