"""Load benchmark on loopback against a real ``phantomex start`` (medians of repeated runs).

1. **HTTP read endpoints at saturation**: ``wrk`` (Debian's package) on ``/health``,
   ``/api/agents``, ``/api/market/prices`` and ``/api/trades`` while the demo trades at speed 60:
   requests per second, p50 and p99 latency, and the errors (socket errors, non-2xx answers and
   answers slower than wrk's 10 s timeout), which must be zero.
2. **WebSocket fan-out**: 200 clients in one asyncio process (the ``websockets`` package) follow
   ``/ws`` while the replay runs at speed 600 (ten ticks a second). Every ``price`` message of
   every client is kept: a tick missed by a client is one the other clients or the server's tick
   count show; the fan-out latency is the receive time minus the message's ``wall_ts`` (the
   server's publish time; same host, same clock).
3. **100 agents over a fast replay**: 100 rule agents (RSI, momentum, spike-fade, train of trade;
   each deciding every bar) on a replay at several speeds: ticks processed per wall second
   against the replay's pace. The kernel keeps up while the ratio stays at 1.

Run: ``make bench-load`` (or ``.venv/bin/python benchmarks/load.py --part http``). The client,
``wrk`` and the server share the machine's CPUs, so the figures are a floor for the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import websockets

HTTP_PATHS = ["/health", "/api/agents", "/api/market/prices", "/api/trades?limit=100"]
BRAINS: list[tuple[str, dict[str, Any]]] = [
    ("rsi", {"period": 14, "oversold": 30, "overbought": 70}),
    ("momentum", {"fast": 5, "slow": 20}),
    ("spike_fade", {"windows": [5, 15, 30], "spike_threshold_pct": 0.4}),
    ("train_of_trade", {}),
]
SYMBOLS = ["BTC", "ETH", "SOL", "DOGE", "XRP"]


# -- a real server ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(speed: float, *, demo: bool = True) -> Iterator[str]:
    """``phantomex start`` on a free port with a fresh data dir; yields its URL."""
    data = Path(tempfile.mkdtemp(prefix="phantomex-load-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHANTOMEX_")}
    env |= {
        "PHANTOMEX_CONFIG": str(data / "none.toml"),
        "PHANTOMEX_DATA_DIR": str(data),
        "PHANTOMEX_PORT": str(port),
        "PHANTOMEX_REPLAY_SPEED": str(speed),
        "PHANTOMEX_DEMO": "true" if demo else "false",
        "PHANTOMEX_LOG_LEVEL": "warning",  # no access log line per request
    }
    with (data / "server.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "phantomex.cli.main", "start"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((data / "server.log").read_text())
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data, ignore_errors=True)


def health(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/health", timeout=30).json())


# -- 1. HTTP with wrk ------------------------------------------------------------------------------
def to_ms(text: str) -> float:
    """A wrk duration (``850.00us``, ``12.5ms``, ``2.10s``, ``1.02m``) in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"unexpected wrk duration {text!r}")
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
    return float(match.group(1)) * units[match.group(2)]


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "p99": to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "errors": errors + (int(non2xx.group(1)) if non2xx else 0),
    }


def bench_http(repeat: int, seconds: int, connections: int) -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `make ops-tools` (Debian's wrk)")
    print(
        f"\n## HTTP reads: wrk -t2 -c{connections} -d{seconds}s --timeout 10s, median of {repeat}"
    )
    print("| endpoint | req/s | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|")
    with server(60) as url:
        time.sleep(5)  # a few trades and decisions in the tables
        for path in HTTP_PATHS:
            runs = [wrk(url + path, seconds, connections) for _ in range(repeat)]
            med = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
            errors = sum(r["errors"] for r in runs)
            print(
                f"| `{path}` | {med['rps']:.0f} | {med['p50']:.1f} | {med['p99']:.1f} "
                f"| {errors:.0f} |",
                flush=True,
            )


# -- 2. WebSocket fan-out --------------------------------------------------------------------------
async def follow(url: str, stop: asyncio.Event, got: list[tuple[str, float]]) -> None:
    async with websockets.connect(url, max_size=None, open_timeout=120) as ws:
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            now = time.time()
            msg = json.loads(raw)
            if msg["type"] == "price":
                sent = datetime.fromisoformat(msg["wall_ts"]).timestamp()
                got.append((msg["ts"], now - sent))


async def fan_out(url: str, clients: int, seconds: float) -> dict[str, float]:
    ws_url = url.replace("http", "ws", 1) + "/ws"
    stop = asyncio.Event()
    got: list[list[tuple[str, float]]] = [[] for _ in range(clients)]
    tasks = [asyncio.create_task(follow(ws_url, stop, g)) for g in got]
    await asyncio.sleep(3)  # every client connected and past its snapshot
    for g in got:
        g.clear()
    ticks0 = (await asyncio.to_thread(health, url))["ticks"]
    await asyncio.sleep(seconds)
    ticks1 = (await asyncio.to_thread(health, url))["ticks"]
    stop.set()
    await asyncio.gather(*tasks)
    seen = set().union(*({ts for ts, _ in g} for g in got))
    # the window's edges are not aligned between clients: compare the ticks all of them span
    first = max(min(ts for ts, _ in g) for g in got)
    last = min(max(ts for ts, _ in g) for g in got)
    inner = {ts for ts in seen if first <= ts <= last}
    missed = sum(len(inner - {ts for ts, _ in g}) for g in got)
    lat = sorted(lat * 1000 for g in got for ts, lat in g)
    return {
        "ticks": ticks1 - ticks0,
        "seen": len(seen),
        "missed": missed,
        "p50": lat[len(lat) // 2],
        "p99": lat[int(len(lat) * 0.99)],
        "max": lat[-1],
    }


def bench_ws(repeat: int, seconds: int, clients: int) -> None:
    print(f"\n## WebSocket fan-out: {clients} clients, speed 600, {seconds}s, median of {repeat}")
    print("| ticks made | ticks seen | ticks missed (all clients) | p50 ms | p99 ms | max ms |")
    print("|---:|---:|---:|---:|---:|---:|")
    with server(600) as url:
        runs = [asyncio.run(fan_out(url, clients, seconds)) for _ in range(repeat)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        f"| {med['ticks']:.0f} | {med['seen']:.0f} | {sum(r['missed'] for r in runs):.0f} "
        f"| {med['p50']:.1f} | {med['p99']:.1f} | {med['max']:.1f} |",
        flush=True,
    )


# -- 3. 100 agents over a fast replay --------------------------------------------------------------
def add_agents(url: str, n: int) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(n):
            brain, params = BRAINS[i % len(BRAINS)]
            spec = {
                "name": f"load-{i:03d}",
                "brain": brain,
                "params": params,
                "symbols": [SYMBOLS[i % 5], SYMBOLS[(i + 2) % 5]],
                "interval_seconds": 60,
                "risk": {"cooldown_seconds": 0},
            }
            client.post("/api/agents", json=spec).raise_for_status()


def bench_agents(repeat: int, seconds: int, agents: int, speeds: list[float]) -> None:
    print(f"\n## {agents} agents: ticks per second against the replay's pace, median of {repeat}")
    print("| speed | target ticks/s | processed ticks/s | ratio | trades |")
    print("|---:|---:|---:|---:|---:|")
    for speed in speeds:
        with server(speed, demo=False) as url:
            add_agents(url, agents)
            rates = []
            for _ in range(repeat):
                t0, h0 = time.monotonic(), health(url)
                time.sleep(seconds)
                t1, h1 = time.monotonic(), health(url)
                rates.append((h1["ticks"] - h0["ticks"]) / (t1 - t0))
            trades = httpx.get(f"{url}/api/trades?limit=1", timeout=60).json()["total"]
        target = speed / 60
        rate = statistics.median(rates)
        print(
            f"| {speed:g} | {target:.1f} | {rate:.1f} | {rate / target:.2f} | {trades} |",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=["http", "ws", "agents", "all"], default="all")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--agents", type=int, default=100)
    p.add_argument("--speeds", default="60,600,3000")
    a = p.parse_args()
    print(f"# PhantomEx load benchmark ({os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')})")
    if a.part in ("http", "all"):
        bench_http(a.repeat, a.seconds, a.connections)
    if a.part in ("ws", "all"):
        bench_ws(a.repeat, a.seconds, a.clients)
    if a.part in ("agents", "all"):
        bench_agents(a.repeat, a.seconds, a.agents, [float(s) for s in a.speeds.split(",")])


if __name__ == "__main__":
    main()
