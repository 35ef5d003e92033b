"""The backtest report's SVG charts: lines, areas and trade markers, drawn to the pixel with
every spike kept."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

import numpy as np

BUY, SELL = "#16a34a", "#dc2626"
WIDTH, PAD_L, PAD_R, PAD_T, PAD_B = 1000, 70, 12, 10, 24


def axis_label(value: float) -> str:
    """A compact axis label."""
    a = abs(value)
    if a >= 1e6:
        return f"{value / 1e6:.2f}M"
    if a >= 1e4:
        return f"{value:,.0f}"
    if a >= 100:
        return f"{value:,.1f}"
    if a >= 1:
        return f"{value:.3f}"
    return f"{value:.4g}"


def escaped(text: Any) -> str:
    """``text`` safe in HTML."""
    return html.escape(str(text))


@dataclass(frozen=True, slots=True)
class Series:
    """One line (or area) of a chart."""

    label: str
    color: str
    values: Sequence[float]  # NaN = no value
    fill: bool = False  # area down to 0 (drawdown)


@dataclass(frozen=True, slots=True)
class Marker:
    """A trade's triangle on a chart."""

    x: int  # index into the chart's x axis
    y: float
    buy: bool
    title: str


def _envelope(values: np.ndarray, width: int) -> list[tuple[int, float]]:
    """Points to draw: every point when few, else the min and max of each pixel column (in
    their order), which keeps every spike visible."""
    n = values.size
    idx = np.arange(n)
    ok = ~np.isnan(values)
    if n <= 2 * width:
        return [(int(i), float(values[i])) for i in idx[ok]]
    out: list[tuple[int, float]] = []
    edges = np.linspace(0, n, width + 1).astype(int)
    for a, b in pairwise_edges(edges):
        chunk = values[a:b]
        good = ~np.isnan(chunk)
        if not good.any():
            continue
        lo = a + int(np.nanargmin(chunk))
        hi = a + int(np.nanargmax(chunk))
        for i in sorted({lo, hi}):
            out.append((i, float(values[i])))
    return out


def pairwise_edges(edges: np.ndarray) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in pairwise(edges.tolist()) if b > a]


def svg_chart(
    series: Sequence[Series],
    times: Sequence[datetime],
    *,
    height: int = 260,
    markers: Sequence[Marker] = (),
    percent: bool = False,
    title: str = "",
) -> str:
    n = len(times)
    arrays = [np.asarray(s.values, dtype=np.float64) for s in series]
    finite = np.concatenate(
        [a[np.isfinite(a)] for a in arrays] + [np.array([m.y for m in markers])]
    )
    if finite.size == 0 or n < 2:
        return '<p class="muted">no data to draw</p>'
    lo, hi = float(finite.min()), float(finite.max())
    if any(s.fill for s in series):
        hi = max(hi, 0.0)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.04
    lo, hi = lo - pad, hi + pad
    plot_w = WIDTH - PAD_L - PAD_R
    plot_h = height - PAD_T - PAD_B

    def x(i: float) -> float:
        return PAD_L + plot_w * i / (n - 1)

    def y(v: float) -> float:
        return PAD_T + plot_h * (hi - v) / (hi - lo)

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-label="{escaped(title)}" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{PAD_L}" y="{PAD_T}" width="{plot_w}" height="{plot_h}" class="plot"/>',
    ]
    for k in range(5):  # horizontal grid and y labels
        v = lo + (hi - lo) * (k + 0.5) / 5
        label = f"{v * 100:.1f}%" if percent else axis_label(v)
        parts.append(
            f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            f'class="grid"/><text x="{PAD_L - 6}" y="{y(v) + 4:.1f}" class="yl">{label}</text>'
        )
    for k in range(5):  # x labels
        i = round((n - 1) * k / 4)
        anchor = "start" if k == 0 else "end" if k == 4 else "middle"
        parts.append(
            f'<text x="{x(i):.1f}" y="{height - 6}" text-anchor="{anchor}" class="xl">'
            f"{times[i]:%Y-%m-%d %H:%M}</text>"
        )
    for s, arr in zip(series, arrays, strict=True):
        points = _envelope(arr, plot_w)
        if not points:
            continue
        path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in points)
        if s.fill:
            base = y(0.0)
            first, last = points[0][0], points[-1][0]
            parts.append(
                f'<polygon points="{x(first):.1f},{base:.1f} {path} {x(last):.1f},{base:.1f}" '
                f'fill="{s.color}" fill-opacity="0.25" stroke="none"/>'
            )
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="1.2"/>'
        )
    r = 5.0 if len(markers) <= 200 else 3.0  # smaller marks when there are many
    for m in markers:
        cx, cy = x(m.x), y(m.y)
        d = 1 if m.buy else -1  # buys below the price pointing up, sells above pointing down
        shape = (
            f"{cx:.1f},{cy + d:.1f} {cx - r:.1f},{cy + d * 2 * r:.1f} "
            f"{cx + r:.1f},{cy + d * 2 * r:.1f}"
        )
        color = BUY if m.buy else SELL
        parts.append(
            f'<polygon points="{shape}" fill="{color}" class="mk"><title>{escaped(m.title)}</title>'
            "</polygon>"
        )
    if len(series) > 1 or markers:
        legend = [
            f'<tspan fill="{s.color}">■ {escaped(s.label)}</tspan>' for s in series if s.label
        ]
        if markers:
            legend.append(f'<tspan fill="{BUY}">▲ buy</tspan> <tspan fill="{SELL}">▼ sell</tspan>')
        parts.append(
            f'<text x="{PAD_L + 8}" y="{PAD_T + 14}" class="lg">{"  ".join(legend)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# -- data for the charts --------------------------------------------------------------------------
