"""``FitTable``: key columns stay whole at any width a table can fit in; text gives way."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from phantomex.cli.fittable import FitTable, key, text
from phantomex.cli.output import agents_table, decisions_table, trades_table

REASON = (
    "EMA(5) 28084 vs EMA(20) 28054.7 on BTC: fast above slow, no cross (long); EMA(5) 1817.07 "
    "vs EMA(20) 1815.97 on ETH: fast above slow, no cross (long)"
)
DECISION = {
    "id": "6b30ba6b988a4c6f8e1f0c0d9f1e2a3b",
    "agent_id": "a" * 32,
    "time": "2023-04-01T22:35:00.123456Z",
    "action": "buy",
    "symbol": "BTC@COINGECKO",
    "quantity": "29932.95019157088122605363985",
    "price": "0.08352",
    "status": "pending",
    "reasoning": REASON,
    "reason": "",
}
TRADE = {
    "time": "2023-04-01T23:07:00Z",
    "agent_name": "Sam Spike-Fade",
    "side": "sell",
    "symbol": "ETH",
    "quantity": "1.0912345678",
    "price": "1821.8765",
    "notional": "1987.95",
    "fee": "1.99",
    "realized_pnl": "-7.1234",
}
AGENT = {
    "id": "57de109fd31a4a91b2e2a671aba9b539",
    "name": "Sam Spike-Fade",
    "brain": "train_of_trade",
    "mode": "autonomous",
    "status": "running",
    "wallet": {"equity": "1000000.5", "pnl": "-1234.5", "pnl_pct": "-12.345"},
}


def render(table: FitTable, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, highlight=False).print(table)
    return out.getvalue()


@pytest.mark.parametrize("width", [80, 100, 200])
def test_key_values_stay_whole_and_the_reason_stays_readable(width: int) -> None:
    out = render(decisions_table([DECISION], {"a" * 32: "Sam Spike-Fade"}), width)
    assert "…" not in out
    for value in ("6b30ba6b", "buy", "BTC@COINGECKO", "29,932.95", "0.08352", "pending"):
        assert value in out, (value, out)
    assert ".123456" not in out  # no microseconds
    words = " ".join(out.split())
    assert "EMA(5) 28084 vs EMA(20) 28054.7 on BTC" in words
    if width == 80:  # the reason moved below the table, whole
        assert "\nReason" in out and max(len(line.rstrip()) for line in out.splitlines()) <= 80


@pytest.mark.parametrize("width", [80, 120])
def test_trades_and_agents_at_80_columns(width: int) -> None:
    out = render(trades_table([TRADE], total=1, offset=0), width)
    for value in ("sell", "ETH", "1.0912346", "1,821.88", "$1,987.95", "$1.99", "−$7.12"):
        assert value in out, (value, out)
    out = render(agents_table([AGENT]), width)
    for value in ("57de109f", "autonomous", "running", "$1,000,000.50", "−$1,234.50", "−12.35%"):
        assert value in out, (value, out)
    assert "…" not in out


def test_text_columns_give_way_widest_first() -> None:
    table = FitTable(key("id"), text("short", min_width=4), text("long", min_width=4))
    table.add_row("k" * 10, "a b c d", " ".join(["word"] * 40))
    out = render(table, 40)
    first = out.splitlines()[2]
    assert first.startswith("k" * 10 + "  a b c d  word")  # the long column shrank, not "short"


def test_a_row_must_match_the_columns() -> None:
    with pytest.raises(ValueError, match="2 cells for 1 columns"):
        FitTable(key("id")).add_row("a", "b")
