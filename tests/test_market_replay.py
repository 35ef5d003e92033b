from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest

from phantomex.domain.models import AssetClass, Bar
from phantomex.market.base import Tick
from phantomex.market.replay import ReplayFeed, replay_dataset, replay_from_files

T0 = datetime(2023, 1, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def make_bars(
    symbol: str,
    closes: Sequence[Decimal | int | str],
    *,
    start: datetime = T0,
    period: timedelta = MIN,
    skip: Sequence[int] = (),
) -> list[Bar]:
    out = []
    for i, c in enumerate(closes):
        if i in skip:
            continue
        close = Decimal(c)
        out.append(Bar(symbol, start + i * period, close, close + 1, close - 1, close, Decimal(i)))
    return out


async def drain(feed: ReplayFeed, limit: int | None = None) -> list[Tick]:
    ticks: list[Tick] = []
    while limit is None or len(ticks) < limit:
        tick = await feed.next_tick()
        if tick is None:
            break
        ticks.append(tick)
    return ticks


def run(feed: ReplayFeed, limit: int | None = None) -> list[Tick]:
    return asyncio.run(drain(feed, limit))


# ----------------------------------------------------------------------------- alignment


def test_tick_time_is_bar_close_and_prices_are_closes() -> None:
    feed = ReplayFeed({"BTC": make_bars("BTC", [10, 11, 12])})
    ticks = run(feed)
    assert [t.time for t in ticks] == [T0 + MIN, T0 + 2 * MIN, T0 + 3 * MIN]
    assert [t.snapshots["BTC"].price for t in ticks] == [10, 11, 12]
    assert [t.bars["BTC"].time for t in ticks] == [T0, T0 + MIN, T0 + 2 * MIN]
    assert all(t.snapshots["BTC"].time == t.time for t in ticks)
    assert feed.instruments["BTC"].asset_class is AssetClass.CRYPTO
    assert feed.instruments["BTC"].quote == "USD"


def test_missing_bar_leaves_a_stale_snapshot() -> None:
    feed = ReplayFeed(
        {
            "A": make_bars("A", [1, 2, 3, 4, 5]),
            "B": make_bars("B", [10, 20, 30, 40, 50], skip=[2, 3]),
            "C": make_bars("C", [7, 8, 9, 10, 11], skip=[0, 1]),  # starts late
        }
    )
    ticks = run(feed)
    assert len(ticks) == 5
    assert [sorted(t.bars) for t in ticks] == [
        ["A", "B"],
        ["A", "B"],
        ["A", "C"],
        ["A", "C"],
        ["A", "B", "C"],
    ]
    # No snapshot for C before its first bar.
    assert "C" not in ticks[0].snapshots and "C" not in ticks[1].snapshots
    # B keeps its t=1 close and time while it has no bars.
    for t in ticks[2:4]:
        assert t.snapshots["B"].price == Decimal(20)
        assert t.snapshots["B"].time == T0 + 2 * MIN < t.time
    assert ticks[4].snapshots["B"].price == Decimal(50)
    assert ticks[4].snapshots["B"].time == ticks[4].time


def test_period_is_inferred() -> None:
    feed = ReplayFeed({"X": make_bars("X", [1, 2, 3, 4], period=timedelta(minutes=5), skip=[2])})
    assert feed.period == timedelta(minutes=5)
    ticks = run(feed)
    assert [t.time for t in ticks] == [T0 + timedelta(minutes=m) for m in (5, 10, 20)]


def test_unsorted_input_is_sorted() -> None:
    bars = make_bars("X", [1, 2, 3])
    ticks = run(ReplayFeed({"X": [bars[2], bars[0], bars[1], bars[0]]}))
    assert [t.snapshots["X"].price for t in ticks] == [1, 2, 3]


def test_invalid_input_is_rejected() -> None:
    with pytest.raises(ValueError):
        ReplayFeed({})
    with pytest.raises(ValueError, match="X"):
        ReplayFeed({"X": []})
    with pytest.raises(ValueError, match="symbol"):
        ReplayFeed({"X": make_bars("Y", [1])})
    naive = [Bar("X", datetime(2023, 1, 1), *(Decimal(1),) * 5)]
    with pytest.raises(ValueError, match="timezone"):
        ReplayFeed({"X": naive})
    with pytest.raises(ValueError, match="speed"):
        ReplayFeed({"X": make_bars("X", [1])}, speed=-1)
    with pytest.raises(ValueError, match="warmup"):
        ReplayFeed({"X": make_bars("X", [1])}, warmup_bars=-1)


# ----------------------------------------------------------------------------- 24h change


def hourly(n: int, symbol: str = "X") -> list[Bar]:
    return make_bars(symbol, [100 + 3 * i + (i % 5) for i in range(n)], period=HOUR)


def test_change_24h_uses_the_close_24h_earlier() -> None:
    bars = hourly(40)
    ticks = run(ReplayFeed({"X": bars}))
    for i, tick in enumerate(ticks):
        change = tick.snapshots["X"].change_24h_pct
        if i < 24:
            assert change is None
        else:
            expected = (bars[i].close / bars[i - 24].close - 1) * 100
            assert change == expected
            assert isinstance(change, Decimal)


def test_change_24h_with_a_gap_uses_the_latest_earlier_bar() -> None:
    bars = [b for b in hourly(30) if b.time != T0 + 2 * HOUR]
    ticks = {t.time: t for t in run(ReplayFeed({"X": bars}, period=HOUR))}
    tick = ticks[T0 + 27 * HOUR]  # bar opening at 26h: 24h earlier is 2h (missing) -> use 1h
    assert tick.snapshots["X"].change_24h_pct == (bars[-4].close / bars[1].close - 1) * 100


@pytest.mark.parametrize("seed", range(6))
def test_change_24h_matches_the_latest_bar_a_day_earlier_on_uneven_data(seed: int) -> None:
    """Bars evenly spaced in stretches, with gaps and bars off the period's grid, two symbols
    on different times: each tick's change compares with the symbol's latest bar opening at
    or before a day earlier."""
    rng = random.Random(seed)
    data: dict[str, list[Bar]] = {}
    for symbol in ("X", "Y"):
        when, bars = T0 + rng.randrange(3) * HOUR, []
        for i in range(150):
            close = Decimal(100 + rng.randrange(50)) + Decimal(i) / 7
            bars.append(Bar(symbol, when, close, close, close, close, Decimal(1)))
            when += HOUR * rng.choice((1, 1, 1, 1, 2, 5))
            if rng.random() < 0.05:
                when += timedelta(minutes=rng.randrange(1, 59))  # off the grid
        data[symbol] = bars
    ticks = run(ReplayFeed(data, period=HOUR))
    assert len(ticks) > 250
    for tick in ticks:
        for symbol, snap in tick.snapshots.items():
            # the snapshot of the symbol's bar closing at snap.time (at this tick or before)
            (bar,) = [b for b in data[symbol] if b.time + HOUR == snap.time]
            earlier = [b for b in data[symbol] if b.time <= bar.time - timedelta(days=1)]
            expected = (bar.close / earlier[-1].close - 1) * 100 if earlier else None
            assert snap.change_24h_pct == expected, (seed, symbol, tick.time)


def test_change_24h_never_looks_ahead() -> None:
    bars = hourly(60)
    cut = 35  # tick index t: everything after bar 35 gets changed
    changed = bars[: cut + 1] + [
        Bar("X", b.time, b.open * 2, b.high * 2, b.low * 2, b.close * 2, b.volume)
        for b in bars[cut + 1 :]
    ]
    original = run(ReplayFeed({"X": bars}))
    altered = run(ReplayFeed({"X": changed}))
    assert original[: cut + 1] == altered[: cut + 1]
    assert original[cut + 1] != altered[cut + 1]  # the test can see a difference


# ----------------------------------------------------------------------------- looping


def test_loop_keeps_time_strictly_increasing_and_repeats_prices() -> None:
    data = {"A": make_bars("A", [1, 2, 3]), "B": make_bars("B", [5, 6, 7], skip=[1])}
    ticks = run(ReplayFeed(data, loop=True), limit=10)
    assert len(ticks) == 10
    times = [t.time for t in ticks]
    assert all(b > a for a, b in pairwise(times))
    assert all(b - a == MIN for a, b in pairwise(times))  # span + period
    assert [t.snapshots["A"].price for t in ticks] == [1, 2, 3] * 3 + [1]
    lap2 = ticks[3]
    assert lap2.bars["A"].time == lap2.time - MIN == T0 + 3 * MIN
    assert lap2.bars["A"].close == Decimal(1)
    # B has no bar at index 1 in every lap: stale snapshot from the same lap.
    assert "B" not in ticks[4].bars
    assert ticks[4].snapshots["B"].time == ticks[3].time


def test_loop_stale_snapshot_carries_over_from_previous_lap() -> None:
    data = {"A": make_bars("A", [1, 2, 3]), "B": make_bars("B", [5, 6, 7], skip=[0])}
    ticks = run(ReplayFeed(data, loop=True), limit=6)
    assert "B" not in ticks[0].snapshots
    assert ticks[3].snapshots["B"].price == Decimal(7)  # from the end of lap 0
    assert ticks[3].snapshots["B"].time == ticks[2].time


def test_loop_change_24h_follows_the_virtual_timeline() -> None:
    bars = hourly(30)  # lap = 30h
    ticks = run(ReplayFeed({"X": bars}, loop=True), limit=70)
    # Lap 1, bar 0: 24h earlier is lap 0, bar 6.
    assert ticks[30].snapshots["X"].change_24h_pct == (bars[0].close / bars[6].close - 1) * 100
    # Lap 1, bar 25: 24h earlier is lap 1, bar 1.
    assert ticks[55].snapshots["X"].change_24h_pct == (bars[25].close / bars[1].close - 1) * 100


def test_no_loop_ends() -> None:
    feed = ReplayFeed({"A": make_bars("A", [1, 2])})
    assert len(run(feed)) == 2
    assert feed.remaining == 0
    assert asyncio.run(feed.next_tick()) is None


# ----------------------------------------------------------------------------- warmup / resume


def test_warmup_ticks_are_not_returned_by_next_tick() -> None:
    bars = make_bars("A", range(1, 11))
    feed = ReplayFeed({"A": bars}, warmup_bars=4)
    warm = feed.warmup()
    assert [t.snapshots["A"].price for t in warm] == [1, 2, 3, 4]
    ticks = run(feed)
    assert [t.snapshots["A"].price for t in ticks] == [5, 6, 7, 8, 9, 10]
    assert feed.warmup() == warm  # stable


def test_warmup_longer_than_data_without_loop() -> None:
    feed = ReplayFeed({"A": make_bars("A", [1, 2, 3])}, warmup_bars=5)
    assert len(feed.warmup()) == 3
    assert run(feed) == []


def test_start_after_resumes_exactly_including_later_laps() -> None:
    data = {
        "A": make_bars("A", range(1, 8)),
        "B": make_bars("B", range(10, 17), skip=[0, 1, 4]),
    }
    full = run(ReplayFeed(data, loop=True), limit=25)
    for j in (0, 3, 5, 6, 7, 11, 16, 20):  # 7 ticks per lap: 7, 11 and 16, 20 are in laps 1, 2
        resumed = run(ReplayFeed(data, loop=True, start_after=full[j].time), limit=3)
        assert resumed == full[j + 1 : j + 4], j
    # Between two ticks: resume at the next one.
    mid = full[9].time + timedelta(seconds=30)
    assert run(ReplayFeed(data, loop=True, start_after=mid), limit=1) == [full[10]]
    # Before the data: from the beginning.
    early = run(ReplayFeed(data, loop=True, start_after=T0 - HOUR), limit=2)
    assert early == full[:2]


def test_start_after_without_loop_past_the_end() -> None:
    data = {"A": make_bars("A", [1, 2, 3])}
    feed = ReplayFeed(data, start_after=T0 + 10 * MIN)
    assert run(feed) == []
    last = ReplayFeed(data, start_after=T0 + 2 * MIN)
    assert [t.snapshots["A"].price for t in run(last)] == [3]


def test_warmup_with_start_after_is_the_ticks_just_before() -> None:
    data = {"A": make_bars("A", range(1, 11))}
    full = run(ReplayFeed(data, loop=True), limit=25)
    feed = ReplayFeed(data, loop=True, warmup_bars=3, start_after=full[12].time)
    assert feed.warmup() == full[10:13]
    assert run(feed, limit=2) == full[13:15]
    assert feed.last_time == full[14].time


# ----------------------------------------------------------------------------- pacing / close


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def paced_feed(speed: float, clock: FakeClock, n: int = 20) -> tuple[ReplayFeed, list[float]]:
    feed = ReplayFeed({"A": make_bars("A", range(1, n + 1))}, speed=speed, clock=clock)
    waits: list[float] = []

    async def fake_wait(delay: float) -> None:
        waits.append(delay)
        clock.now += delay

    feed._wait = fake_wait  # type: ignore[method-assign]
    return feed, waits


def test_pacing_schedule_does_not_drift() -> None:
    clock = FakeClock()
    feed, waits = paced_feed(60, clock)  # 1-minute bars at 60x: one tick per second
    assert feed.interval == pytest.approx(1.0)
    emitted: list[float] = []

    async def consume() -> None:
        for _ in range(6):
            assert await feed.next_tick() is not None
            emitted.append(clock.now)
            clock.now += 0.3  # the consumer works 0.3 s per tick

    asyncio.run(consume())
    assert emitted == pytest.approx([1000.0, 1001.0, 1002.0, 1003.0, 1004.0, 1005.0])
    assert waits == pytest.approx([0.7] * 5)


def test_pacing_catches_up_briefly_then_reanchors_after_a_long_stall() -> None:
    clock = FakeClock()
    feed, _ = paced_feed(120, clock)  # 0.5 s per tick

    async def consume() -> list[float]:
        times = []
        for stall in (0.0, 1.2, 0.0, 0.0, 30.0, 0.0, 0.0):
            clock.now += stall
            assert await feed.next_tick() is not None
            times.append(clock.now)
        return times

    times = asyncio.run(consume())
    # 1.2 s stall (< max lag): ticks 1..2 come at once, then back on the 0.5 s grid; after the
    # 30 s stall the schedule is re-anchored instead of bursting 60 ticks.
    assert times == pytest.approx([1000.0, 1001.2, 1001.2, 1001.5, 1031.5, 1032.0, 1032.5])


@pytest.mark.parametrize("speed", [0, math.inf])
def test_unpaced_never_waits(speed: float) -> None:
    clock = FakeClock()
    feed, waits = paced_feed(speed, clock, n=200)
    assert len(run(feed)) == 200
    assert waits == []


def test_a_replay_behind_its_clock_still_lets_other_tasks_run() -> None:
    """Slow ticks (a busy kernel) on an unpaced replay: the API's tasks get a turn at least
    every 10 ms of ticks, not once every so many ticks."""
    feed = ReplayFeed({"A": make_bars("A", range(1, 41))}, speed=0)
    turns = 0

    async def other_task(stop: asyncio.Event) -> None:
        nonlocal turns
        while not stop.is_set():
            turns += 1
            await asyncio.sleep(0)

    async def consume() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(other_task(stop))
        await asyncio.sleep(0)
        started = turns
        while await feed.next_tick() is not None:
            time.sleep(0.005)  # a tick's work, blocking the loop
        stop.set()
        await task
        return turns - started

    assert asyncio.run(consume()) >= 10  # 40 ticks of 5 ms: about 20 turns


def test_real_pacing_at_high_speed() -> None:
    feed = ReplayFeed({"A": make_bars("A", range(1, 22))}, speed=6000)  # 10 ms per tick
    start = time.monotonic()
    ticks = run(feed)
    elapsed = time.monotonic() - start
    assert len(ticks) == 21
    assert 0.19 <= elapsed < 3.0  # 20 intervals of 10 ms; generous upper bound


def test_close_ends_the_feed() -> None:
    feed = ReplayFeed({"A": make_bars("A", [1, 2, 3])}, loop=True)

    async def go() -> tuple[Tick | None, Tick | None]:
        first = await feed.next_tick()
        feed.close()
        return first, await feed.next_tick()

    first, after = asyncio.run(go())
    assert first is not None and after is None
    assert feed.closed


def test_take_gives_the_ticks_of_next_tick_at_once() -> None:
    """``take`` (a backtest driver's, once per batch it gives other tasks a turn) hands on the
    same ticks as ``next_tick``, moves the same cursor, and ends with the data or on close."""
    bars = {"A": make_bars("A", [1, 2, 3, 4]), "B": make_bars("B", [5, 6, 7, 8], skip=[1])}
    awaited = run(ReplayFeed(bars, warmup_bars=1))
    feed = ReplayFeed(bars, warmup_bars=1)
    taken = []
    while (tick := feed.take()) is not None:
        taken.append(tick)
        assert feed.cursor == 1 + len(taken) and feed.last_time == tick.time
    assert taken == awaited and len(taken) == 3
    closing = ReplayFeed(bars, loop=True)
    assert closing.take() is not None
    closing.close()
    assert closing.take() is None


def test_close_wakes_a_sleeping_next_tick() -> None:
    feed = ReplayFeed({"A": make_bars("A", [1, 2, 3])}, speed=1)  # 60 s per tick

    async def go() -> tuple[Tick | None, float]:
        await feed.next_tick()
        asyncio.get_running_loop().call_later(0.05, feed.close)
        start = time.monotonic()
        tick = await feed.next_tick()
        return tick, time.monotonic() - start

    tick, waited = asyncio.run(go())
    assert tick is None and waited < 5


@pytest.mark.asyncio
async def test_async_iteration() -> None:
    feed = ReplayFeed({"A": make_bars("A", [1, 2, 3])})
    prices = [tick.snapshots["A"].price async for tick in feed]
    assert prices == [1, 2, 3]


# ----------------------------------------------------------------------------- helpers / perf


def test_replay_from_files(tmp_path: Path) -> None:
    (tmp_path / "BTC_USDT-1m.json").write_text(
        "[[1672531200000, 1, 2, 0.5, 1.5, 10], [1672531260000, 1.5, 2, 1, 1.75, 10]]"
    )
    (tmp_path / "eth.csv").write_text(
        "time,open,high,low,close,volume\n2023-01-01T00:01:00Z,5,6,4,5.5,1\n"
    )
    feed = replay_from_files([tmp_path / "BTC_USDT-1m.json", tmp_path / "eth.csv"])
    assert feed.symbols == ("BTC", "ETH")
    ticks = run(feed)
    assert [t.time for t in ticks] == [T0 + MIN, T0 + 2 * MIN]
    assert ticks[0].snapshots == {"BTC": ticks[0].snapshots["BTC"]}
    assert ticks[1].snapshots["ETH"].price == Decimal("5.5")
    assert ticks[1].snapshots["BTC"].price == Decimal("1.75")
    named = replay_from_files({"XBT": tmp_path / "BTC_USDT-1m.json"})
    assert named.symbols == ("XBT",)
    with pytest.raises(ValueError, match="twice"):
        replay_from_files([tmp_path / "eth.csv", tmp_path / "eth.csv"])


def test_replay_dataset_first_tick() -> None:
    feed = replay_dataset(symbols=["BTC", "XRP"], warmup_bars=2)
    assert feed.bar_count == 43198
    assert feed.period == MIN
    tick = run(feed, limit=1)[0]
    assert tick.time == datetime(2023, 4, 1, 21, 6, tzinfo=UTC)  # third bar (21:05) closes
    assert set(tick.bars) == {"BTC", "XRP"}


def test_replay_is_fast() -> None:
    n = 43_200
    data = {
        s: [
            Bar(s, T0 + i * MIN, *(Decimal(100 + (i * (k + 3)) % 97),) * 4, Decimal(1))
            for i in range(n)
        ]
        for k, s in enumerate("ABCDE")
    }
    start = time.perf_counter()
    feed = ReplayFeed(data)
    ticks = 0

    async def go() -> None:
        nonlocal ticks
        while await feed.next_tick() is not None:
            ticks += 1

    asyncio.run(go())
    elapsed = time.perf_counter() - start
    assert ticks == n
    assert elapsed < 10  # ~0.7 s on a laptop; the bound only catches O(n^2) regressions


def test_a_replay_of_columns_gives_the_ticks_and_skipped_bars_of_the_list() -> None:
    """Bars given as columns (``BarColumns``) replay as the same bars given as a list: every
    tick (with gaps and two symbols), and the bars and snapshots of a skipped span, whose bars
    the price history keeps unbuilt and reads back equal."""
    from phantomex.market.base import BarSpan, PriceHistory
    from phantomex.market.columns import BarColumns

    a = make_bars("A", [100 + (i % 7) * 3 for i in range(300)], skip=[5, 6, 7, 100])
    b = make_bars("B", [50 + (i % 5) for i in range(280)], start=T0 + 20 * MIN)
    as_list = {"A": a, "B": b}
    as_columns = {s: BarColumns.from_bars(s, bars) for s, bars in as_list.items()}
    assert asyncio.run(drain(ReplayFeed(as_columns))) == asyncio.run(drain(ReplayFeed(as_list)))

    spans = []
    for data in (as_list, as_columns):
        feed = ReplayFeed(data)
        spans.append([feed.skip_to(40), feed.skip_to(41), feed.skip_to(250)])
    assert isinstance(spans[1][2][0]["A"], BarSpan)
    for (bars_l, snaps_l), (bars_c, snaps_c) in zip(spans[0], spans[1], strict=True):
        assert snaps_c == snaps_l
        assert {s: list(v) for s, v in bars_c.items()} == {s: list(v) for s, v in bars_l.items()}

    eager, lazy = PriceHistory(max_bars=100), PriceHistory(max_bars=100)
    for history, (first, visited, second) in ((eager, spans[0]), (lazy, spans[1])):
        for symbol, bars in first[0].items():
            history.extend(symbol, bars)
        history.append([bar for bars in visited[0].values() for bar in bars])  # as a tick's
        for symbol, bars in second[0].items():
            history.extend(symbol, bars)
        history.extend("A", second[0]["A"][:10])  # not after the latest bar: ignored
    assert all(isinstance(item, int) for item in list(lazy._series("A"))[-50:])
    for now in (T0 + 400 * MIN, a[200].time, a[150].time + MIN // 2):
        for symbol in ("A", "B"):
            assert lazy.view(now).bars(symbol) == eager.view(now).bars(symbol)
            assert lazy.view(now).bars(symbol, 7) == eager.view(now).bars(symbol, 7)
            assert lazy.view(now).closes(symbol).tolist() == eager.view(now).closes(symbol).tolist()


def test_the_tick_taken_last_gives_its_bars_as_positions_in_the_data() -> None:
    """A tick :meth:`take` returned last gives its bars as one-bar spans of the replay's
    columns (what the price history keeps); any other tick (an older one, a looping replay's
    later lap, bars given as a list) gives None, so its bars are read as they are."""
    from phantomex.market.columns import BarColumns

    a = make_bars("A", [100 + i for i in range(6)], skip=[2])
    b = make_bars("B", [50 + i for i in range(6)])
    feed = ReplayFeed({"A": BarColumns.from_bars("A", a), "B": BarColumns.from_bars("B", b)})
    first, second = feed.take(), feed.take()
    assert first is not None and second is not None
    assert feed.taken_bars(first) is None
    spans = feed.taken_bars(second)
    assert spans is not None
    assert {s: list(v) for s, v in spans.items()} == {s: [bar] for s, bar in second.bars.items()}
    third = feed.take()  # A has no bar at this tick
    assert third is not None and set(feed.taken_bars(third) or {}) == set(third.bars) == {"B"}

    looping = ReplayFeed({"B": BarColumns.from_bars("B", b)}, loop=True)
    for _ in range(len(b)):
        assert looping.taken_bars(looping.take() or first) is not None
    later_lap = looping.take()
    assert later_lap is not None and looping.taken_bars(later_lap) is None
    listed = ReplayFeed({"A": BarColumns.from_bars("A", a), "B": b})
    assert listed.taken_bars(listed.take() or first) is None


def test_a_tick_taken_without_bars_gives_them_as_positions_only() -> None:
    """``take(bars=False)``: a tick of columns in lap 0 carries the same snapshots (24h change
    included) and no ``Bar``, whose positions :meth:`taken_bars` still gives; bars given as a
    list or a later lap (whose bars the history reads from the tick) are built all the same."""
    from phantomex.market.columns import BarColumns

    a = make_bars("A", [100 + i for i in range(40)], skip=[2, 17], period=HOUR)
    b = make_bars("B", [50 + 2 * i for i in range(40)], period=HOUR)
    columns = {"A": BarColumns.from_bars("A", a), "B": BarColumns.from_bars("B", b)}
    with_bars, bare = ReplayFeed(columns), ReplayFeed(columns)
    for i in range(40):
        full, lean = with_bars.take(), bare.take(bars=i % 3 == 0)
        assert full is not None and lean is not None
        assert lean.time == full.time and lean.snapshots == full.snapshots
        assert lean.bars == (full.bars if i % 3 == 0 else {})
        spans = bare.taken_bars(lean)
        assert spans is not None
        assert {s: list(v) for s, v in spans.items()} == {s: [x] for s, x in full.bars.items()}
    assert bare.take(bars=False) is None

    listed = ReplayFeed({"A": a, "B": BarColumns.from_bars("B", b)})
    tick = listed.take(bars=False)
    assert tick is not None and set(tick.bars) == {"A", "B"}
    looping = ReplayFeed({"B": BarColumns.from_bars("B", b)}, loop=True)
    for _ in range(len(b)):
        assert looping.take(bars=False) is not None
    later_lap = looping.take(bars=False)
    assert later_lap is not None and set(later_lap.bars) == {"B"}
