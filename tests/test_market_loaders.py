from __future__ import annotations

import gzip
import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest

from phantomex.market.loaders import (
    dataset_symbols,
    infer_symbol,
    load_bars,
    load_dataset,
    read_ohlcv,
)

T0 = datetime(2023, 4, 1, 21, 3, tzinfo=UTC)
T0_MS = 1680382980000  # == T0
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "crypto"


def write(path: Path, text: str) -> Path:
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


# ----------------------------------------------------------------------------- CSV


def test_csv_iso_times_are_parsed_to_utc(tmp_path: Path) -> None:
    path = write(
        tmp_path / "BTC.csv",
        "Timestamp,Open,High,Low,Close,Volume\n"
        "2023-04-01T21:03:00Z,28434.31,28436.35,28434.22,28436.34,9.9053\n"
        "2023-04-01 21:04:00,28436.34,28440,28430.5,28439.99,1.5\n"  # naive -> UTC
        "2023-04-01T23:05:00+02:00,28439.99,28441,28438,28440.01,0\n",  # offset -> 21:05 UTC
    )
    bars, report = read_ohlcv(path)
    assert [b.time for b in bars] == [T0 + timedelta(minutes=i) for i in range(3)]
    assert all(b.time.utcoffset() == timedelta(0) for b in bars)
    assert bars[0].symbol == "BTC"
    assert bars[0].close == Decimal("28436.34")
    assert bars[1].high == Decimal("28440")
    assert bars[2].volume == Decimal(0)
    assert report.skipped == 0 and report.rows_loaded == 3 and not report.reordered


def test_csv_epoch_ms_and_alternative_header(tmp_path: Path) -> None:
    path = write(
        tmp_path / "data.csv",
        "idx,open_time,OPEN,HIGH,LOW,CLOSE,VOLUME,trades\n"
        f"0,{T0_MS},1.5,2,1,1.75,10,7\n"
        f"1,{T0_MS + 60_000},1.75,1.8,1.7,1.8,11,3\n",
    )
    bars = load_bars(path, symbol="ETH")
    assert [b.time for b in bars] == [T0, T0 + timedelta(minutes=1)]
    assert [b.symbol for b in bars] == ["ETH", "ETH"]
    assert bars[0].open == Decimal("1.5") and bars[0].close == Decimal("1.75")
    assert bars[1].volume == Decimal(11)


@pytest.mark.parametrize("column", ["time", "date", "Date", "datetime"])
def test_csv_time_column_names(tmp_path: Path, column: str) -> None:
    path = write(tmp_path / "x.csv", f"{column},open,high,low,close,volume\n2023-04-01,1,1,1,1,1\n")
    bars = load_bars(path, symbol="X")
    assert bars[0].time == datetime(2023, 4, 1, tzinfo=UTC)


def test_csv_epoch_seconds_are_recognised(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", f"time,open,high,low,close\n{T0_MS // 1000},1,1,1,1\n")
    (bar,) = load_bars(path, symbol="X")
    assert bar.time == T0
    assert bar.volume == Decimal(0)  # no volume column


def test_csv_gz(tmp_path: Path) -> None:
    path = write(
        tmp_path / "SOL.csv.gz",
        f"timestamp,open,high,low,close,volume\n{T0_MS},21.04,21.04,21.03,21.04,44.91\n",
    )
    bars, report = read_ohlcv(path)
    assert report.symbol == "SOL"
    assert bars[0].low == Decimal("21.03") and bars[0].volume == Decimal("44.91")


def test_csv_bad_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    good = [f"{T0_MS + i * 60_000},10,11,9,10.5,1" for i in range(3)]
    bad = [
        f"{T0_MS + 10 * 60_000},NaN,11,9,10,1",  # NaN
        f"{T0_MS + 11 * 60_000},0,11,9,10,1",  # zero price
        f"{T0_MS + 12 * 60_000},10,11,9,-1,1",  # negative close
        f"{T0_MS + 13 * 60_000},10,9,11,10,1",  # high < low
        f"{T0_MS + 14 * 60_000},10,11,9",  # missing fields
        "yesterday,10,11,9,10,1",  # unparsable time
        f"{T0_MS + 15 * 60_000},ten,11,9,10,1",  # unparsable number
        f"{T0_MS + 16 * 60_000},10,11,9,10,-5",  # negative volume
        f"{T0_MS + 17 * 60_000},10,11,9,10,",  # empty volume
        f"{T0_MS + 18 * 60_000},10,inf,9,10,1",  # infinite
    ]
    text = "timestamp,open,high,low,close,volume\n" + "\n".join([good[0], *bad, *good[1:]]) + "\n\n"
    bars, report = read_ohlcv(write(tmp_path / "X.csv", text))
    assert len(bars) == 3
    assert [b.time for b in bars] == [T0 + timedelta(minutes=i) for i in range(3)]
    assert report.skipped == len(bad)
    assert report.rows_read == len(bad) + 3
    assert report.problems[0].startswith("line 3:")  # header is line 1, first good row line 2
    assert "high" in report.problems[3] and "low" in report.problems[3]


def test_bad_rows_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(
        tmp_path / "X.csv", f"time,open,high,low,close\n{T0_MS},1,1,1,1\n{T0_MS},x,1,1,1\n"
    )
    with caplog.at_level(logging.WARNING):
        load_bars(path)
    assert "skipped 1 bad row" in caplog.text


def test_unsorted_rows_are_sorted_and_first_duplicate_kept(tmp_path: Path) -> None:
    rows = [
        f"{T0_MS + 120_000},3,3,3,3,1",
        f"{T0_MS},1,1,1,1,1",
        f"{T0_MS + 60_000},2,2,2,2,1",
        f"{T0_MS},9,9,9,9,1",  # duplicate of the second row: dropped
    ]
    path = write(tmp_path / "X.csv", "timestamp,open,high,low,close,volume\n" + "\n".join(rows))
    bars, report = read_ohlcv(path)
    assert [b.close for b in bars] == [Decimal(1), Decimal(2), Decimal(3)]
    assert report.reordered and report.duplicates == 1 and report.skipped == 0


def test_unreadable_files_raise_with_the_file_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing\.csv"):
        load_bars(tmp_path / "missing.csv", symbol="X")
    header_less = write(tmp_path / "nohead.csv", f"{T0_MS},1,1,1,1,1\n")
    with pytest.raises(ValueError, match=r"nohead\.csv.*header"):
        load_bars(header_less, symbol="X")
    all_bad = write(tmp_path / "allbad.csv", "time,open,high,low,close\nx,1,1,1,1\n")
    with pytest.raises(ValueError, match=r"allbad\.csv: no valid OHLCV rows"):
        load_bars(all_bad, symbol="X")
    empty = write(tmp_path / "empty.csv", "\n\n")
    with pytest.raises(ValueError, match=r"empty\.csv"):
        load_bars(empty, symbol="X")
    broken_json = write(tmp_path / "broken.json", "[[1, 2,")
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON"):
        load_bars(broken_json, symbol="X")
    corrupt_gz = tmp_path / "corrupt.csv.gz"
    corrupt_gz.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(ValueError, match=r"corrupt\.csv\.gz"):
        load_bars(corrupt_gz, symbol="X")


# ----------------------------------------------------------------------------- JSON


def test_freqtrade_json_numbers_are_exact(tmp_path: Path) -> None:
    # 0.1 and 12345678901234567.89 are not representable as floats; the text must survive.
    text = (
        f"[[{T0_MS},0.1,0.30000000000000004,0.1,0.2,12345678901234567.89],"
        f"[{T0_MS + 60_000},0.2,0.3,0.1,0.3,106342.0]]"
    )
    bars, report = read_ohlcv(write(tmp_path / "binance_XRP_USDT_1m_2023-04-01.json", text))
    assert report.symbol == "XRP" and report.rows_loaded == 2
    assert bars[0].time == T0 and bars[1].time == T0 + timedelta(minutes=1)
    assert bars[0].open == Decimal("0.1")
    assert bars[0].high == Decimal("0.30000000000000004")
    assert bars[0].volume == Decimal("12345678901234567.89")
    assert str(bars[1].volume) == "106342.0"


def test_freqtrade_json_gz_and_bad_rows(tmp_path: Path) -> None:
    rows = [
        [T0_MS, 1.5, 2, 1, 1.5, 3],
        [T0_MS + 60_000, 1.5, 2, 1, 1.5],  # too short
        [T0_MS + 120_000, None, 2, 1, 1.5, 3],  # null
        "not a row",
        [T0_MS + 180_000, 1.5, 1, 2, 1.5, 3],  # high < low
        [T0_MS + 240_000, 1.5, 2, 1, -1, 3],  # negative close
        [T0_MS + 300_000, 1.5, 2, 1, 1.6, 3],
    ]
    text = json.dumps(rows)[:-1] + f", [{T0_MS + 360_000}, NaN, 2, 1, 1.5, 3]]"  # NaN constant
    path = write(tmp_path / "DOGE_USDT-1m.json.gz", text)
    bars, report = read_ohlcv(path)
    assert report.symbol == "DOGE"
    assert [b.time for b in bars] == [T0, T0 + timedelta(minutes=5)]
    assert bars[1].close == Decimal("1.6")
    assert report.skipped == 6 and report.rows_read == 8
    assert report.problems[0].startswith("row 2:")


def test_json_without_suffix_is_sniffed(tmp_path: Path) -> None:
    path = write(tmp_path / "BTC", f"[[{T0_MS}, 1, 1, 1, 1, 1]]")
    assert load_bars(path)[0].time == T0


def test_json_not_an_array_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"obj\.json"):
        load_bars(write(tmp_path / "obj.json", '{"a": 1}'), symbol="X")


# ----------------------------------------------------------------------------- symbols


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("binance_BTC_USDT_1m_2023-03-16_2023-05-01.json", "BTC"),
        ("BTC_USDT-1m.json", "BTC"),
        ("BTC.csv.gz", "BTC"),
        ("eth_1m.csv", "ETH"),
        ("DOGE_1m.csv.gz", "DOGE"),
        ("kraken-SOL-USD.json.gz", "SOL"),
    ],
)
def test_infer_symbol(name: str, symbol: str) -> None:
    assert infer_symbol(name) == symbol
    assert infer_symbol(Path("/some/dir") / name) == symbol


def test_infer_symbol_fails_clearly() -> None:
    with pytest.raises(ValueError, match="symbol"):
        infer_symbol("2023-04-01.csv")
    with pytest.raises(ValueError, match="symbol"):
        infer_symbol("binance.json")


def test_explicit_symbol_wins(tmp_path: Path) -> None:
    path = write(tmp_path / "BTC_USDT-1m.json", f"[[{T0_MS}, 1, 1, 1, 1, 1]]")
    assert load_bars(path, symbol="WBTC")[0].symbol == "WBTC"


# ----------------------------------------------------------------------------- shipped dataset

DEMO_SYMBOLS = ["BTC", "ETH", "SOL", "DOGE", "XRP"]
DEMO_ROWS = 43198
DEMO_FIRST = datetime(2023, 4, 1, 21, 3, tzinfo=UTC)
DEMO_LAST = datetime(2023, 5, 1, 21, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo() -> dict[str, list]:
    return load_dataset()


def test_demo_dataset_shape(demo: dict[str, list]) -> None:
    assert dataset_symbols() == DEMO_SYMBOLS
    assert list(demo) == DEMO_SYMBOLS
    for symbol, bars in demo.items():
        assert len(bars) == DEMO_ROWS, symbol
        assert bars[0].time == DEMO_FIRST and bars[-1].time == DEMO_LAST
        assert all(b.symbol == symbol for b in bars)
        times = [b.time for b in bars]
        assert all(b - a == timedelta(minutes=1) for a, b in pairwise(times))
        assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)


def test_demo_dataset_holds_real_prices(demo: dict[str, list]) -> None:
    # Values copied from the source files in shared/data/crypto (first and last candle).
    first = {
        "BTC": ("28434.31", "28436.34"),
        "ETH": ("1815.99", "1816.61"),
        "SOL": ("21.04", "21.04"),
        "DOGE": ("0.08143", "0.08144"),
        "XRP": ("0.5079", "0.5082"),
    }
    last_close = {
        "BTC": "27727.11",
        "ETH": "1810.75",
        "SOL": "21.67",
        "DOGE": "0.07798",
        "XRP": "0.4608",
    }
    for symbol, (open_, close) in first.items():
        bar = demo[symbol][0]
        assert (bar.open, bar.close) == (Decimal(open_), Decimal(close)), symbol
        assert str(demo[symbol][-1].close) == last_close[symbol], symbol
    assert str(demo["XRP"][0].volume) == "106342.0"  # original text, not reformatted


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared source data not available")
def test_demo_dataset_matches_source_file_exactly(demo: dict[str, list]) -> None:
    (source,) = SHARED.glob("binance_ETH_USDT_1m_*.json")
    rows = json.loads(source.read_text(), parse_float=Decimal)
    start = int(DEMO_FIRST.timestamp() * 1000)
    end = int(DEMO_LAST.timestamp() * 1000)
    expected = [r for r in rows if start <= r[0] <= end]
    got = [
        [int(b.time.timestamp() * 1000), b.open, b.high, b.low, b.close, b.volume]
        for b in demo["ETH"]
    ]
    assert got == expected


def test_load_dataset_subset_and_errors() -> None:
    subset = load_dataset("demo", symbols=["xrp", "BTC"])
    assert list(subset) == ["XRP", "BTC"]
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("nope")
    with pytest.raises(ValueError, match="ADA"):
        load_dataset("demo", symbols=["ADA"])
