"""Helpers of the browser tests: a restartable server on a fixed port, Debian's chromium through
the ``playwright`` package (never a downloaded browser) and a console-error watch."""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import CLI, START_TIMEOUT, free_port, server_env, terminate, wait_health

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DASHBOARD_INDEX = ROOT / "src" / "phantomex" / "api" / "static" / "index.html"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"


def browser_or_skip() -> None:
    """Skip (with the way to fix it) when the browser tests cannot run here."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: install Debian's chromium "
            "(`make test` does: apt-get install -y --no-install-recommends chromium)"
        )
    if not DASHBOARD_INDEX.exists():
        pytest.skip("the dashboard is not built: run `make dashboard` (needs Node.js 20+)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is missing: run `make install`")


@dataclass
class RestartableServer:
    """``phantomex start`` on one port and data directory that can be stopped and started again."""

    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.data_dir / "server-output.log"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = server_env(self.port, self.data_dir, **self.extra_env)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*CLI, "start", "--port", str(self.port), "--data-dir", str(self.data_dir)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_health(self.url, START_TIMEOUT, self.proc)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            pytest.fail(f"{exc}\n--- server output ---\n{self.output()}")

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
            self.proc = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def get(self, path: str, **params: Any) -> Any:
        resp = httpx.get(f"{self.url}{path}", params=params, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def post(self, path: str, body: Any = None) -> Any:
        resp = httpx.post(f"{self.url}{path}", json=body, timeout=30)
        resp.raise_for_status()
        return resp.json()


@contextlib.contextmanager
def restartable_server(data_dir: Path, **extra_env: str) -> Iterator[RestartableServer]:
    server = RestartableServer(data_dir, dict(extra_env))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class ConsoleWatch:
    """Console errors and uncaught page errors. Browser-level messages that a test provokes on
    purpose (a 422 answer, refused connections while the server is down) are allowed only inside
    ``expecting(...)``."""

    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)
    tolerated: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "404 GET url" of 4xx/5xx answers

    def attach(self, page: Any) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("response", self._on_response)

    def _on_response(self, resp: Any) -> None:
        if resp.status >= 400:
            self.failed.append(f"{resp.status} {resp.request.method} {resp.url}")

    def report(self) -> str:
        """The errors, and every failed answer the page got (which resource a 404 was)."""
        return "\n".join([*self.errors, "-- failed answers:", *self.failed])

    def _on_console(self, msg: Any) -> None:
        if msg.type not in ("error", "assert"):
            return
        text = f"console.{msg.type}: {msg.text}"
        if any(p.search(msg.text) for p in self.allowed):
            self.tolerated.append(text)
        else:
            self.errors.append(text)

    @contextlib.contextmanager
    def expecting(self, *patterns: str) -> Iterator[None]:
        compiled = [re.compile(p) for p in patterns]
        self.allowed.extend(compiled)
        try:
            yield
        finally:
            time.sleep(0.3)  # late console messages of the same step
            for p in compiled:
                self.allowed.remove(p)


def shot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot under test-artifacts/dashboard/ (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if full_page:
        page.evaluate("window.scrollTo(0, 0)")  # else the sticky header lands mid-page
    page.screenshot(path=str(path), full_page=full_page)
    return path


@contextlib.contextmanager
def live_page(url: str, watch: ConsoleWatch, timeout_ms: int) -> Iterator[Any]:
    """Debian's chromium on the dashboard at ``url``, once its WebSocket is live."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(timeout_ms)
        pg = context.new_page()
        watch.attach(pg)
        pg.goto(url + "/")
        pg.wait_for_selector('[data-testid=connection][data-state="live"]')
        try:
            yield pg
        finally:
            context.close()
            browser.close()


def expect(locator: Any) -> Any:
    """Playwright's ``expect`` (imported when a browser test runs, not at collection)."""
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)
