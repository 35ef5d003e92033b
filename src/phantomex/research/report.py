"""Backtest reports: one self-contained HTML file (inline SVG charts, no scripts, no network) and a
PNG summary next to it (matplotlib, Agg backend).

The HTML holds: a summary, a comparison table when several agents ran, the price of every symbol
with the trades marked (buys ▲, sells ▼), the equity and drawdown curves, the metrics, the monthly
returns, every trade, and the configuration that produced it. The same result gives the same
files byte for byte apart from the elapsed time shown.
"""

from __future__ import annotations

import html
import json
import math
from bisect import bisect_left
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from phantomex import formatting as fmt
from phantomex.formatting import MetricKind
from phantomex.research.llm_figures import llm_summary_line
from phantomex.research.metrics import TradeRecord, monthly_returns, round_trips
from phantomex.research.report_svg import BUY, SELL, Marker, Series, escaped, svg_chart
from phantomex.research.spec import AgentResult, BacktestResult

__all__ = ["render_html", "render_png", "write_report"]

PALETTE = ("#2563eb", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# (key, label, format) of the metrics shown, in order.
METRIC_ROWS: tuple[tuple[str, str, MetricKind], ...] = (
    ("final_equity", "Final equity", "money"),
    ("net_profit", "Net profit", "money"),
    ("total_return", "Total return", "pct"),
    ("cagr", "CAGR", "pct"),
    ("annual_volatility", "Annualised volatility", "share"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("calmar", "Calmar", "ratio"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("max_drawdown_duration_seconds", "Max drawdown duration", "duration"),
    ("trades", "Trades (fills)", "int"),
    ("round_trips", "Round trips", "int"),
    ("win_rate", "Win rate", "share"),
    ("profit_factor", "Profit factor", "ratio"),
    ("average_trade", "Average round trip P&L", "money"),
    ("average_trade_return", "Average round trip return", "pct"),
    ("exposure", "Exposure (bars in market)", "share"),
    ("fees_paid", "Fees paid", "money"),
)


def write_report(result: BacktestResult, path: str | Path) -> tuple[Path, Path]:
    """Write the HTML report to ``path`` and the PNG summary next to it (same name, ``.png``)."""
    html_path = Path(path)
    if html_path.suffix.lower() not in (".html", ".htm"):
        html_path = html_path.with_suffix(html_path.suffix + ".html")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    png_path = html_path.with_suffix(".png")
    html_path.write_text(render_html(result), encoding="utf-8")
    render_png(result, png_path)
    return html_path, png_path


# -- formatting -----------------------------------------------------------------------------------
def fmt_metric(value: Any, kind: MetricKind) -> str:
    """A metric as :func:`phantomex.formatting.metric` writes it, safe in HTML."""
    return html.escape(fmt.metric(value, kind))


def _closes_on_axis(result: BacktestResult, symbol: str) -> list[float]:
    """The symbol's close at each point of ``result.times`` (its open at the start, the last
    close carried over a missing bar, NaN before its first bar)."""
    period = result.period
    by_close = {b.time + period: float(b.close) for b in result.data[symbol]}
    first = result.data[symbol][0]
    out: list[float] = []
    last = float(first.open) if first.time == result.times[0] else math.nan
    for t in result.times:
        last = by_close.get(t, last)
        out.append(last)
    return out


def _trade_x(times: Sequence[datetime], trade: TradeRecord) -> int:
    return min(bisect_left(times, trade.time), len(times) - 1)


def _drawdown(equity: Sequence[Decimal]) -> list[float]:
    e = np.array([float(v) for v in equity], dtype=np.float64)
    return list(e / np.maximum.accumulate(e) - 1.0)


def _ticks(result: BacktestResult) -> dict[str, Decimal | None]:
    """Each symbol's price precision, as its bars were quoted."""
    return {sym: fmt.tick_of(b.close for b in bars) for sym, bars in result.data.items()}


def _several(result: BacktestResult) -> bool:
    return len(result.agents) > 1


# -- HTML -----------------------------------------------------------------------------------------
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#0f172a;
background:#f8fafc}main{max-width:1060px;margin:0 auto;padding:20px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid
#e2e8f0;padding-bottom:4px}.muted{color:#64748b}.cards{display:flex;flex-wrap:wrap;gap:10px;
margin:14px 0}.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:8px 14px;
min-width:120px}.card b{display:block;font-size:18px}table{border-collapse:collapse;
background:#fff;font-variant-numeric:tabular-nums}td,th{border:1px solid #e2e8f0;padding:3px 8px;
text-align:right;white-space:nowrap}th{background:#f1f5f9}td.l,th.l{text-align:left}
.scroll{max-height:480px;overflow:auto;border:1px solid #e2e8f0}.pos{color:#15803d}
.neg{color:#b91c1c}svg{background:#fff;border:1px solid #e2e8f0;border-radius:6px}
svg .plot{fill:none}svg .grid{stroke:#eef2f7}svg text{font:11px system-ui,sans-serif;
fill:#475569}svg .yl{text-anchor:end}svg .lg{font-size:12px}pre{background:#fff;
border:1px solid #e2e8f0;padding:10px;overflow:auto;font-size:12px}
"""


def render_html(result: BacktestResult) -> str:
    cfg = result.config.describe()
    symbols = list(result.data)
    names = ", ".join(a.name for a in result.agents)
    m = result.metrics
    out: list[str] = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>PhantomEx backtest: {escaped(names)}</title><style>{CSS}</style></head>"
        "<body><main>",
        f"<h1>Backtest: {escaped(names)}</h1>",
        f'<p class="muted">{escaped(", ".join(symbols))} · {result.bars:,} bars of '
        f"{fmt.duration(result.period.total_seconds())} · {result.times[0]:%Y-%m-%d %H:%M} → "
        f"{result.times[-1]:%Y-%m-%d %H:%M} UTC · fills at "
        f"{'the next bar open' if cfg['fill'] == 'next_open' else 'the bar close'} · fee "
        f"{escaped(cfg['fee_bps'])} bps · slippage {escaped(cfg['slippage_bps'])} bps · "
        f"ran in {result.elapsed_seconds:.1f} s</p>",
        '<div class="cards">',
    ]
    cards = ("final_equity", "total_return", "sharpe", "max_drawdown", "trades", "win_rate")
    for key, label, kind in (r for k in cards for r in METRIC_ROWS if r[0] == k):
        out.append(f'<div class="card">{label}<b>{fmt_metric(m.get(key), kind)}</b></div>')
    out.append("</div>")
    if m.get("ratio_basis"):
        out.append(
            f'<p class="muted">Sharpe and Sortino: {escaped(m["ratio_basis"]["label"])}.</p>'
        )
    if result.errors:
        out.append("<h2>Errors</h2><ul>")
        out.extend(f"<li>{escaped(err)}</li>" for err in result.errors)
        out.append("</ul>")
    out.extend(_llm_section(result.agents))
    if _several(result):
        out.append('<h2 id="comparison">Comparison</h2>')
        out.append(_comparison_table(result.agents))
    out.append('<h2 id="prices">Prices and trades</h2>')
    ticks = _ticks(result)
    for sym in symbols:
        closes = _closes_on_axis(result, sym)
        markers = [
            Marker(
                _trade_x(result.times, t),
                float(t.price),
                t.side == "buy",
                f"{t.agent} {t.side} {fmt.quantity(t.quantity)} {sym} @ "
                f"{fmt.price(t.price, ticks[sym])} on {fmt.when(t.time)}",
            )
            for a in result.agents
            for t in a.trades
            if t.symbol == sym
        ]
        out.append(f"<h3>{escaped(sym)}</h3>")
        out.append(
            svg_chart(
                [Series(f"{sym} close", "#334155", closes)],
                result.times,
                markers=markers,
                title=f"{sym} price with trades",
            )
        )
    out.append('<h2 id="equity">Equity</h2>')
    eq_series = [
        Series(a.name, PALETTE[i % len(PALETTE)], [float(v) for v in a.equity])
        for i, a in enumerate(result.agents)
    ]
    out.append(svg_chart(eq_series, result.times, title="equity"))
    out.append('<h2 id="drawdown">Drawdown</h2>')
    dd_series = [
        Series(a.name, PALETTE[i % len(PALETTE)], _drawdown(a.equity), fill=True)
        for i, a in enumerate(result.agents)
    ]
    out.append(svg_chart(dd_series, result.times, height=200, percent=True, title="drawdown"))
    out.append('<h2 id="metrics">Metrics</h2>')
    out.append(_metrics_table(result))
    out.append('<h2 id="monthly">Monthly returns</h2>')
    for agent in result.agents:
        if _several(result):
            out.append(f"<h3>{escaped(agent.name)}</h3>")
        out.append(_monthly_table(result.times, agent.equity))
    out.append('<h2 id="trades">Trades</h2>')
    out.append(_trades_table(result))
    out.append('<h2 id="config">Configuration</h2>')
    out.append(f"<pre>{escaped(json.dumps(cfg, indent=2))}</pre>")
    out.append("</main></body></html>\n")
    return "\n".join(out)


MAX_LLM_ANSWERS = 200  # answers listed per agent in the report


def _llm_section(agents: Sequence[AgentResult]) -> list[str]:
    """Each LLM agent's figures and its answers with their reasoning."""
    out: list[str] = []
    for agent in agents:
        if agent.llm is None:
            continue
        out.append(f'<h2 id="llm">Language model: {escaped(agent.name)}</h2>')
        out.append(f"<p>{escaped(llm_summary_line(agent.llm))}</p>")
        rows = [
            f"<tr><td>{escaped(fmt.when(a['time']) if a['time'] else '')}</td>"
            f"<td>{escaped(a['action'] or 'no answer')}</td><td>{escaped(a['symbol'] or '')}</td>"
            f"<td>{escaped(a['reasoning'] or a['error'] or '')}</td></tr>"
            for a in agent.llm["answers"][:MAX_LLM_ANSWERS]
        ]
        out.append(
            "<table><thead><tr><th>time</th><th>action</th><th>symbol</th><th>reasoning</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        )
    return out


def _comparison_table(agents: Sequence[AgentResult]) -> str:
    keys = [
        r
        for r in METRIC_ROWS
        if r[0]
        in (
            "final_equity",
            "total_return",
            "cagr",
            "annual_volatility",
            "sharpe",
            "sortino",
            "calmar",
            "max_drawdown",
            "trades",
            "win_rate",
            "profit_factor",
            "exposure",
            "fees_paid",
        )
    ]
    head = "".join(f"<th>{escaped(label)}</th>" for _, label, _ in keys)
    rows = []
    for a in agents:
        desc = f"{a.spec.brain} {json.dumps(a.spec.params, sort_keys=True)}"
        cells = "".join(f"<td>{fmt_metric(a.metrics.get(k), kind)}</td>" for k, _, kind in keys)
        rows.append(
            f'<tr><td class="l">{escaped(a.name)}</td>'
            f'<td class="l">{escaped(desc)}</td>{cells}</tr>'
        )
    return (
        '<div class="scroll"><table><tr><th class="l">Agent</th><th class="l">Strategy</th>'
        f"{head}</tr>{''.join(rows)}</table></div>"
    )


def _metrics_table(result: BacktestResult) -> str:
    columns: list[tuple[str, dict[str, Any]]] = [(a.name, a.metrics) for a in result.agents]
    if _several(result):
        columns.append(("All agents", result.metrics))
    head = "".join(f"<th>{escaped(name)}</th>" for name, _ in columns)
    rows = [
        f'<tr><td class="l">{escaped(label)}</td>'
        + "".join(f"<td>{fmt_metric(metrics.get(key), kind)}</td>" for _, metrics in columns)
        + "</tr>"
        for key, label, kind in METRIC_ROWS
    ]
    return f'<table><tr><th class="l">Metric</th>{head}</tr>{"".join(rows)}</table>'


def _pct_cell(value: float | None) -> str:
    if value is None:
        return "<td></td>"
    cls = "pos" if value > 0 else "neg" if value < 0 else ""
    return f'<td class="{cls}">{fmt.percent(value, fraction=True)}</td>'


def _monthly_table(times: Sequence[datetime], equity: Sequence[Decimal]) -> str:
    e = [float(v) for v in equity]
    months = monthly_returns(times, e)
    years = sorted({y for y, _ in months})
    head = "".join(f"<th>{m}</th>" for m in MONTHS)
    rows = []
    for year in years:
        cells = "".join(_pct_cell(months.get((year, mo))) for mo in range(1, 13))
        total = math.prod(1 + months[k] for k in months if k[0] == year) - 1
        rows.append(f'<tr><td class="l">{year}</td>{cells}{_pct_cell(total)}</tr>')
    return f'<table><tr><th class="l">Year</th>{head}<th>Year</th></tr>{"".join(rows)}</table>'


def _trades_table(result: BacktestResult) -> str:
    trades = result.trades
    if not trades:
        return '<p class="muted">no trades</p>'
    pnl_at: dict[tuple[str, str, datetime], Decimal] = {
        (rt.agent, rt.symbol, rt.exit_time): rt.pnl for rt in round_trips(trades)
    }
    several = _several(result)
    ticks = _ticks(result)
    head = (
        ('<th class="l">Agent</th>' if several else "")
        + '<th class="l">Time (UTC)</th><th class="l">Symbol</th><th class="l">Side</th>'
        "<th>Quantity</th><th>Price</th><th>Notional</th><th>Fee</th><th>Round-trip P&amp;L</th>"
    )
    rows = []
    for t in trades:
        pnl = pnl_at.get((t.agent, t.symbol, t.time)) if t.side == "sell" else None
        pnl_cell = (
            f'<td class="{"pos" if pnl > 0 else "neg" if pnl < 0 else ""}">'
            f"{fmt.money(pnl, sign=True)}</td>"
            if pnl is not None
            else "<td></td>"
        )
        side_cls = "pos" if t.side == "buy" else "neg"
        rows.append(
            "<tr>"
            + (f'<td class="l">{escaped(t.agent)}</td>' if several else "")
            + f'<td class="l">{fmt.when(t.time)}</td><td class="l">{escaped(t.symbol)}</td>'
            f'<td class="l {side_cls}">{t.side}</td><td>{fmt.quantity(t.quantity)}</td>'
            f"<td>{fmt.price(t.price, ticks[t.symbol])}</td><td>{fmt.money(t.notional)}</td>"
            f"<td>{fmt.money(t.fee)}</td>{pnl_cell}</tr>"
        )
    return (
        f'<p class="muted">{len(trades):,} fills</p><div class="scroll"><table><tr>{head}</tr>'
        f"{''.join(rows)}</table></div>"
    )


# -- PNG ------------------------------------------------------------------------------------------
def render_png(result: BacktestResult, path: str | Path) -> Path:
    """A one-page summary: the first symbol's price with the trades, the equity of each agent,
    the drawdown, and the key metrics in the title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    times = np.array([np.datetime64(t.replace(tzinfo=None), "us") for t in result.times])
    fig = Figure(figsize=(12, 9), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2, 1.3]})
    sym = next(iter(result.data))
    ax = axes[0]
    ax.plot(times, _closes_on_axis(result, sym), color="#334155", lw=0.7, label=f"{sym} close")
    for side, color, marker in (("buy", BUY, "^"), ("sell", SELL, "v")):
        pts = [
            (times[_trade_x(result.times, t)], float(t.price))
            for a in result.agents
            for t in a.trades
            if t.symbol == sym and t.side == side
        ]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.scatter(xs, ys, marker=marker, color=color, s=22, zorder=3, label=side)
    ax.set_ylabel(f"{sym} price")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    for i, agent in enumerate(result.agents):
        color = PALETTE[i % len(PALETTE)]
        axes[1].plot(times, [float(v) for v in agent.equity], color=color, lw=1, label=agent.name)
        dd = np.array(_drawdown(agent.equity)) * 100
        axes[2].fill_between(times, dd, 0, color=color, alpha=0.3, lw=0)
        axes[2].plot(times, dd, color=color, lw=0.7)
    axes[1].set_ylabel("equity")
    axes[1].legend(loc="upper left", fontsize=8)
    axes[1].grid(alpha=0.3)
    axes[2].set_ylabel("drawdown %")
    axes[2].grid(alpha=0.3)
    m = result.metrics
    names = ", ".join(a.name for a in result.agents)
    fig.suptitle(
        f"{names} on {', '.join(result.data)}: final equity "
        f"{fmt_metric(m.get('final_equity'), 'money')}, return "
        f"{fmt_metric(m.get('total_return'), 'pct')}, Sharpe {fmt_metric(m.get('sharpe'), 'ratio')}"
        f", max DD {fmt_metric(m.get('max_drawdown'), 'pct')}, {m.get('trades', 0)} trades",
        fontsize=11,
    )
    fig.autofmt_xdate()
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, format="png", metadata={"Software": None})
    return out
