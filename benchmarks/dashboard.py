"""Dashboard benchmark: the web dashboard in Debian's chromium against a real server.

A real ``phantomex start`` (the replay demo at speed 600: ten 1-minute bars, ten price ticks a
second) on a free port, driven by playwright with ``/usr/bin/chromium`` (never a downloaded
browser). The same measurements run twice, in the same script:

- **baseline** (the peer): the demo as it starts, 3 agents and the few trades they make;
- **loaded**: 50 more agents with rule brains (created through ``POST /api/agents``, all trading
  on their own) and 10,000 more trades. The trades are seeded the fast way that stays
  consistent: the server is stopped, the fills go through phantomex's own ledger and store
  (``Ledger(on_commit=Store.commit_entry)``, one transaction, the agents' wallets and positions
  updated fill by fill), the server is started again and ``phantomex audit`` must pass. Their
  times are spread over the replayed bars, so they land on the chart as markers too.

Measured (medians; the ratio is loaded / baseline):

1. page load: navigation start (``performance.timeOrigin``) to the FIRST RENDER, the first
   agent card and the prices visible (found by ``page.wait_for_function`` polling every
   animation frame); median of 5 loads, each in a fresh browser context (cold cache). With the
   steps before it (HTML received, DOMContentLoaded, the WebSocket snapshot received), the trade
   log complete (every stored trade loaded) and the long tasks of a load
   (``PerformanceObserver('longtask')``);
2. trade log filter and sort: the control changed in the page, to the frame painted after the
   rows updated (``requestAnimationFrame`` then a task); median of 5 rounds of each step;
3. scrolling the trade log for 5 s (200 px a frame, bouncing at the ends) while live updates
   arrive: frame intervals (``requestAnimationFrame``), long tasks;
4. main-thread blocking over 5 s of price ticks at speed 600, the page left alone: long tasks,
   total blocking time (the part of each long task above 50 ms), frame intervals, and the ticks
   the server made against those the page saw.

On a machine with few CPUs the server, the browser (software rendering: ``--disable-gpu``) and
this script share them, so the loaded server's own work shows in the page's figures too.

Run: ``.venv/bin/python benchmarks/dashboard.py`` (about 1.5-2 minutes). Needs the dashboard
built (``make dashboard``), ``/usr/bin/chromium`` and the playwright package (``make install``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import httpx

from phantomex.broker.paper import PaperBroker
from phantomex.domain.models import Fill, Side
from phantomex.ledger.ledger import Ledger
from phantomex.store.repo import Store

ROOT = Path(__file__).resolve().parents[1]
INDEX = ROOT / "src" / "phantomex" / "api" / "static" / "index.html"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [  # as in tests/e2e_helpers.py
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SPEED = "600"
CLI = [sys.executable, "-m", "phantomex.cli.main"]
VIEWPORT = {"width": 1400, "height": 1000}
SCROLL_STEP = 200  # px per frame: 12,000 px/s at 60 fps, about 350 rows a second
WINDOWS = 3  # 5-second windows of scrolling, and of ticks, per state
TIMEOUT_MS = 60_000
BRAINS = ["rsi", "momentum", "spike_fade", "train_of_trade"]
SYMBOLS = ["BTC", "DOGE", "ETH", "SOL", "XRP"]
QTY = Decimal("0.00000001")


# -- the server --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """``phantomex start`` on one port and data directory, stopped and started again at will."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHANTOMEX_")}
        env.update(
            PHANTOMEX_CONFIG=str(self.data_dir / "no-such-config.toml"),
            PHANTOMEX_HOST="127.0.0.1",
            PHANTOMEX_PORT=str(self.port),
            PHANTOMEX_DATA_DIR=str(self.data_dir),
            PHANTOMEX_REPLAY_SPEED=SPEED,
            PYTHONUNBUFFERED="1",
        )
        return env

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "server-output.log").open("ab") as out:
            self.proc = subprocess.Popen(
                [*CLI, "start", "--port", str(self.port), "--data-dir", str(self.data_dir)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError("the server did not answer /health within 60 s")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def get(self, path: str, **params: Any) -> Any:
        resp = httpx.get(self.url + path, params=params, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def post(self, path: str, body: Any = None) -> Any:
        resp = httpx.post(self.url + path, json=body, timeout=30)
        resp.raise_for_status()
        return resp.json()


# -- seeding -------------------------------------------------------------------------------------
def create_agents(server: Server, count: int) -> list[dict[str, Any]]:
    """``count`` autonomous agents with rule brains (default parameters), through the API."""
    agents = []
    for i in range(count):
        syms = [SYMBOLS[(i + k) % len(SYMBOLS)] for k in range(3)]
        body = {
            "name": f"Bench {i + 1:02d}",
            "brain": BRAINS[i % len(BRAINS)],
            "symbols": syms,
            "interval_seconds": 300,
            "allowance": "10000",
        }
        agents.append(server.post("/api/agents", body))
    return agents


def seed_trades(
    db: Path, agents: list[dict[str, Any]], bars: dict[str, list[dict[str, Any]]], total: int
) -> int:
    """``total`` fills spread over ``agents`` (round trips: a buy, then a sale of the whole
    position), each at a replayed bar's close, applied through the ledger and committed by the
    store with the wallet and positions they produce (the server must be stopped)."""
    store = Store(f"sqlite:///{db}")
    try:
        ledger = Ledger(on_commit=store.commit_entry)
        wallets = store.load_wallets()
        for a in agents:
            ledger.restore(wallets[a["id"]])
        fee = PaperBroker().fee_for
        per_agent = total // len(agents)
        applied = 0
        for n, a in enumerate(agents):
            with store.unit():  # one transaction per agent (a unit of 10,000 is 3x slower)
                for i in range(per_agent):
                    sym = a["symbols"][(i // 2) % len(a["symbols"])]
                    series = bars[sym]
                    # the agent's fills in time order over the bars (a sale after its buy)
                    bar = series[min(len(series) - 1, (i * len(series)) // per_agent)]
                    price = Decimal(bar["close"])
                    when = datetime.fromisoformat(bar["time"].replace("Z", "+00:00"))
                    if i % 2 == 0:
                        notional = Decimal(100 + (n * 37 + i * 11) % 400)
                        qty = (notional / price).quantize(QTY, rounding=ROUND_DOWN)
                        side = Side.BUY
                    else:
                        qty = ledger.wallet(a["id"]).positions[sym].quantity
                        side = Side.SELL
                    ledger.apply(
                        Fill(
                            agent_id=a["id"],
                            symbol=sym,
                            side=side,
                            quantity=qty,
                            price=price,
                            fee=fee(qty * price),
                            time=when,
                            idempotency_key=f"bench:{a['id']}:{i}",
                            reasoning="benchmark seed",
                        )
                    )
                    applied += 1
        return applied
    finally:
        store.close()


# -- in the page -----------------------------------------------------------------------------------
INIT = """
(() => {
  const b = (window.__bench = { longtasks: [], ticks: 0 });
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) b.longtasks.push([e.startTime, e.duration]);
    }).observe({ type: 'longtask', buffered: true });
  } catch (e) { b.noLongtask = String(e); }
  // when the WebSocket's first message (the snapshot) arrives
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => { b.snapshot ??= performance.now(); });
    }
  };
})();
"""

# true once the first agent card and the prices are on screen; records when (ms since navigation)
FIRST_RENDER = """() => {
  const card = document.querySelector('[data-testid=agent-card]');
  const price = document.querySelector('[data-testid=price-bar] [data-price]');
  const ok = !!card && card.getBoundingClientRect().height > 0 && !!price
    && /\\d/.test(price.textContent);
  const b = window.__bench;
  if (ok && b.firstRender === undefined) b.firstRender = performance.now();
  return ok;
}"""

LOG_COMPLETE = """(want) => {
  const el = document.querySelector('[data-testid=trade-count]');
  const ok = !!el && Number(el.dataset.loaded) >= want;
  const b = window.__bench;
  if (ok && b.logComplete === undefined) b.logComplete = performance.now();
  return ok;
}"""

# one filter/sort step: change the control, wait for the rows, then for the frame painted after
STEP = """async ({ kind, value }) => {
  const painted = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  const rows = () => [...document.querySelectorAll('[data-testid=trade-row]')];
  const t0 = performance.now();
  if (kind === 'sort') {
    document.querySelector(`[data-testid=sort-${value}]`).click();
  } else {
    const sel = document.querySelector(`[data-testid=filter-${kind}]`);
    sel.value = value;
    sel.dispatchEvent(new Event('change', { bubbles: true }));
  }
  await painted();
  const ms = performance.now() - t0;
  const r = rows();
  let ok = r.length > 0;
  if (kind === 'agent' && value) ok = ok && r.every((x) => x.dataset.agentId === value);
  if (kind === 'symbol' && value) ok = ok && r.every((x) => x.dataset.symbol === value);
  if (kind === 'sort') {
    const th = document.querySelector(`[data-testid=sort-${value}]`).closest('th');
    ok = ok && th.getAttribute('aria-sort') !== 'none';
  }
  return { ms, ok, rows: r.length };
}"""

# frames and long tasks over `ms`, optionally scrolling the trade log by `step` px a frame
WINDOW = """async ({ ms, step }) => {
  const b = window.__bench;
  const sc = document.querySelector('[data-testid=trade-log] .scroller');
  const bar = document.querySelector('[data-testid=price-bar]');
  let ticks = 0;
  const mo = new MutationObserver(() => { ticks += 1; });
  mo.observe(bar, { attributes: true, attributeFilter: ['data-ts'] });
  const since = performance.now();
  const frames = [];
  let dir = 1, maxRows = 0;
  await new Promise((resolve) => {
    let last = performance.now();
    const tick = (now) => {
      frames.push(now - last);
      last = now;
      if (step) {
        const max = sc.scrollHeight - sc.clientHeight;
        let next = sc.scrollTop + dir * step;
        if (next >= max) { next = max; dir = -1; }
        if (next <= 0) { next = 0; dir = 1; }
        sc.scrollTop = next;
        maxRows = Math.max(maxRows, sc.querySelectorAll('[data-testid=trade-row]').length);
      }
      if (now - since < ms) requestAnimationFrame(tick); else resolve();
    };
    requestAnimationFrame(tick);
  });
  await new Promise((r) => setTimeout(r, 100)); // late long-task entries
  mo.disconnect();
  const lt = b.longtasks.filter(([s]) => s >= since && s <= since + ms).map(([, d]) => d);
  const elapsed = performance.now() - since - 100;
  frames.shift();
  return { frames, longtasks: lt, ticks, elapsed, maxRows };
}"""


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: Sequence[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def newest_trade(server: Server, wait: float = 15.0) -> dict[str, Any]:
    """The newest stored trade (its agent and symbol are the filters), waiting for a first one."""
    deadline = time.monotonic() + wait
    while True:
        rows = server.get("/api/trades", limit=1)["trades"]
        if rows or time.monotonic() > deadline:
            return rows[0] if rows else {"agent_id": "", "symbol": ""}
        time.sleep(0.5)


def measure(
    browser: Any, server: Server, *, trades: int, agent_id: str, symbol: str, loads: int
) -> dict[str, float]:
    """Every measurement on one server state; returns metric name -> value."""
    out: dict[str, float] = {}
    html, dcl, snapshot, first, complete, load_lt, load_lt_ms = [], [], [], [], [], [], []
    for _ in range(loads):
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_MS)
        context.add_init_script(INIT)
        page = context.new_page()
        page.goto(server.url + "/", wait_until="commit")
        page.wait_for_function(FIRST_RENDER, polling="raf")
        page.wait_for_function(LOG_COMPLETE, arg=trades, polling="raf")
        page.wait_for_timeout(300)
        b = page.evaluate(
            "() => ({...window.__bench, nav: performance.getEntriesByType('navigation')[0]"
            ".toJSON()})"
        )
        html.append(b["nav"]["responseEnd"])
        dcl.append(b["nav"]["domContentLoadedEventEnd"])
        snapshot.append(b["snapshot"])
        first.append(b["firstRender"])
        complete.append(b["logComplete"])
        durations = [d for s, d in b["longtasks"] if s <= b["logComplete"] + 300]
        load_lt.append(len(durations))
        load_lt_ms.append(sum(durations))
        context.close()
    out["load: HTML received, ms"] = median(html)
    out["load: DOMContentLoaded, ms"] = median(dcl)
    out["load: WebSocket snapshot received, ms"] = median(snapshot)
    out["load: FIRST RENDER (agent card + prices visible), ms"] = median(first)
    out["load: trade log complete (every trade loaded), ms"] = median(complete)
    out["load: long tasks"] = median(load_lt)
    out["load: long tasks total, ms"] = median(load_lt_ms)

    # one page for the interactions, the scroll and the idle ticks
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(INIT)
    page = context.new_page()
    page.goto(server.url + "/")
    page.wait_for_function(LOG_COMPLETE, arg=trades, polling="raf")
    page.get_by_test_id("trade-log").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    steps = {
        "filter by agent": ("agent", agent_id),
        "filter cleared": ("agent", ""),
        "filter by symbol": ("symbol", symbol),
        "filter by symbol cleared": ("symbol", ""),
        "sort by price": ("sort", "price"),
        "sort by time": ("sort", "time"),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(5):
        for name, (kind, value) in steps.items():
            res = page.evaluate(STEP, {"kind": kind, "value": value})
            if not res["ok"]:
                raise AssertionError(f"{name}: the rows did not update as expected: {res}")
            times[name].append(res["ms"])
    for name, values in times.items():
        out[f"{name} → painted, ms"] = median(values)

    def windows(key: str, step: int) -> None:
        """``WINDOWS`` windows of 5 s; every figure is the median over the windows."""
        runs: list[dict[str, float]] = []
        for _ in range(WINDOWS):
            ticks_before = server.get("/health")["ticks"]
            w = page.evaluate(WINDOW, {"ms": 5000, "step": step})
            lt = w["longtasks"]
            run = {
                "frames": len(w["frames"]),
                "median frame, ms": median(w["frames"]),
                "p95 frame, ms": p95(w["frames"]),
                "long tasks": len(lt),
                "long tasks total, ms": sum(lt),
                "total blocking time, ms": sum(max(0.0, d - 50) for d in lt),
            }
            if step:
                run["rows in the DOM (max)"] = w["maxRows"]
            else:
                run["server ticks"] = server.get("/health")["ticks"] - ticks_before
                run["price ticks seen by the page"] = w["ticks"]
            runs.append(run)
        for name in runs[0]:
            out[f"{key} 5 s: {name}"] = median([r[name] for r in runs])

    windows("scroll", SCROLL_STEP)
    page.evaluate("document.querySelector('[data-testid=trade-log] .scroller').scrollTop = 0")
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    windows("ticks", 0)
    out["chart markers (BTC)"] = float(page.get_by_test_id("chart").get_attribute("data-markers"))
    context.close()
    return out


def fmt(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:,.1f}"


def ratio(loaded: float, base: float) -> str:
    if base != base or loaded != loaded:
        return "n/a"
    if base == 0:
        return "n/a" if loaded == 0 else "inf"
    return f"{loaded / base:.2f}x"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--trades", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=5, help="page loads per state (median)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()

    if not INDEX.exists():
        print("the dashboard is not built: run `make dashboard`", file=sys.stderr)
        return 2
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    data_dir = Path(tempfile.mkdtemp(prefix="phantomex-bench-dashboard-"))
    server = Server(data_dir)
    try:
        server.start()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                demo = server.get("/api/agents")
                last = newest_trade(server)  # the demo's first trades
                base_trades = server.get("/api/trades", limit=1)["total"]
                print(f"baseline: {len(demo)} agents, {base_trades} trades", file=sys.stderr)
                baseline = measure(
                    browser,
                    server,
                    trades=base_trades,
                    agent_id=last["agent_id"],
                    symbol=last["symbol"],
                    loads=args.loads,
                )
                base_trades = server.get("/api/trades", limit=1)["total"]

                steps: dict[str, float] = {}
                t = time.perf_counter()

                def step(name: str) -> None:
                    nonlocal t
                    steps[name] = time.perf_counter() - t
                    t = time.perf_counter()

                agents = create_agents(server, args.agents)
                bars = {
                    s: server.get("/api/market/history", symbol=s, limit=1000)["bars"]
                    for s in SYMBOLS
                }
                step("agents")
                server.stop()
                step("stop")
                seeded = seed_trades(data_dir / "phantomex.db", agents, bars, args.trades)
                step("fills")
                server.start()
                step("start")
                audit = server.cli("audit")
                if audit.returncode != 0:
                    raise RuntimeError(f"phantomex audit failed:\n{audit.stdout}{audit.stderr}")
                step("audit")
                total = server.get("/api/trades", limit=1)["total"]
                n_agents = len(server.get("/api/agents"))
                print(
                    f"loaded: {n_agents} agents, {total} trades ({seeded} seeded, audit ok; "
                    + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
                    + ")",
                    file=sys.stderr,
                )
                loaded = measure(
                    browser,
                    server,
                    trades=total,
                    agent_id=agents[0]["id"],
                    symbol=agents[0]["symbols"][0],
                    loads=args.loads,
                )
            finally:
                browser.close()
    finally:
        server.stop()
        if args.keep:
            print(f"data kept in {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)

    cpus = os.cpu_count()
    print(
        f"\n## Dashboard benchmark (chromium headless, {VIEWPORT['width']}x{VIEWPORT['height']},"
        f" replay speed {SPEED}, {cpus} CPUs, {time.perf_counter() - started:.0f} s)\n"
    )
    print(
        f"| metric | baseline: demo, {len(demo)} agents, ~{base_trades} trades "
        f"| loaded: {n_agents} agents, {total:,} trades | ratio |"
    )
    print("|---|---:|---:|---:|")
    for name, base in baseline.items():
        print(f"| {name} | {fmt(base)} | {fmt(loaded[name])} | {ratio(loaded[name], base)} |")
    print(
        f"\nMedians of {args.loads} cold loads; filter/sort: median of 5 rounds, control change"
        " → the frame painted after the rows updated; frames are requestAnimationFrame"
        " intervals; long tasks ≥ 50 ms (PerformanceObserver 'longtask'). Seeding: agents by"
        " the API, fills through Ledger + Store with the server stopped, `phantomex audit` ok."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
