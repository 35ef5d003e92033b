"""The web dashboard: how the API serves it, its JavaScript unit tests, and a real browser
(Debian's chromium driven by playwright) against a real server replaying the demo.

The browser tests share one server, browser and page and run in file order: each step builds on
the previous ones (the agent made through the form is the one that trades, deposits, …)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from e2e_helpers import (
    ROOT,
    ConsoleWatch,
    RestartableServer,
    browser_or_skip,
    expect,
    live_page,
    restartable_server,
    shot,
)
from fastapi import FastAPI
from fastapi.testclient import TestClient

from phantomex.api.dashboard import mount_dashboard
from phantomex.devtools.llm_sim.server import SimServer

FRONTEND = ROOT / "frontend"
BUYER = "E2E Buyer"
TIMEOUT = 20_000  # ms, for expectations in the page


# -- serving (no browser) ----------------------------------------------------------------------
def test_not_built_page_explains_how_to_build(tmp_path: Path) -> None:
    app = FastAPI()
    mount_dashboard(app, tmp_path / "missing")
    client = TestClient(app)
    resp = client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "not been built" in resp.text
    assert "make dashboard" in resp.text
    assert client.get("/assets/index.js").status_code == 404


def test_build_is_served_with_cache_headers(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>")
    (tmp_path / "assets" / "app-123.js").write_text("console.log(1)")
    app = FastAPI()
    mount_dashboard(app, tmp_path)
    client = TestClient(app)
    index = client.get("/")
    assert index.status_code == 200
    assert index.text.startswith("<!doctype html>")
    assert index.headers["cache-control"] == "no-cache"
    asset = client.get("/assets/app-123.js")
    assert asset.status_code == 200
    assert "immutable" in asset.headers["cache-control"]
    assert client.get("/assets/missing.js").status_code == 404
    assert client.get("/anything-else").status_code == 404  # no catch-all route


def test_package_lock_has_no_download_addresses() -> None:
    lock = (FRONTEND / "package-lock.json").read_text()
    assert '"resolved"' not in lock
    assert json.loads(lock)["lockfileVersion"] >= 3


def test_frontend_unit_tests() -> None:
    """Vitest: the WebSocket store's reducers, the reconnect back-off, decimals, the trade log."""
    npm = shutil.which("npm")
    if npm is None or not (FRONTEND / "node_modules").exists():
        pytest.skip("npm or frontend/node_modules missing: run `make dashboard`")
    proc = subprocess.run(
        [npm, "test", "--silent", "--", "--reporter=dot", "--color=false"],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the real thing ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableServer]:
    browser_or_skip()
    with restartable_server(tmp_path_factory.mktemp("dashboard")) as srv:
        yield srv


@pytest.fixture(scope="module")
def watch() -> ConsoleWatch:
    return ConsoleWatch()


@pytest.fixture(scope="module")
def page(server: RestartableServer, watch: ConsoleWatch) -> Iterator[Any]:
    with live_page(server.url, watch, TIMEOUT) as pg:
        yield pg


def card(page: Any, name: str) -> Any:
    return page.locator(f'[data-testid=agent-card][data-name="{name}"]')


def buyer_id(server: RestartableServer) -> str:
    agents = {a["name"]: a["id"] for a in server.get("/api/agents")}
    assert BUYER in agents, f"{BUYER} was not created: {sorted(agents)}"
    return agents[BUYER]


def market_passes(server: RestartableServer, since: str, minutes: int) -> None:
    """Wait until the replayed market is ``minutes`` past ``since`` (a generous deadline)."""
    goal = datetime.fromisoformat(since.replace("Z", "+00:00")) + timedelta(minutes=minutes)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        times = [p["time"] for p in server.get("/api/market/prices")]
        if times and max(datetime.fromisoformat(t.replace("Z", "+00:00")) for t in times) >= goal:
            return
        time.sleep(0.1)
    raise AssertionError(f"the market did not reach {goal} within 60 s")


def test_api_is_not_shadowed(server: RestartableServer) -> None:
    root = httpx.get(server.url + "/", timeout=10)
    assert root.status_code == 200 and '<div id="app">' in root.text
    assert httpx.get(server.url + "/health", timeout=10).json()["status"] == "ok"
    assert httpx.get(server.url + "/docs", timeout=10).status_code == 200
    assert isinstance(httpx.get(server.url + "/api/agents", timeout=10).json(), list)
    missing = httpx.get(server.url + "/api/nope", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_prices_update_without_reload(page: Any) -> None:
    page.evaluate("window.__sameDocument = true")
    bar = page.get_by_test_id("price-bar")
    expect(page.get_by_test_id("price-BTC")).to_be_visible()
    first = bar.get_attribute("data-ts")
    page.wait_for_function(
        "ts => document.querySelector('[data-testid=price-bar]').dataset.ts !== ts", arg=first
    )
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    expect(page.get_by_test_id("agent-card")).to_have_count(3)
    expect(page.get_by_test_id("total-equity")).to_contain_text("$")
    expect(page.locator("[data-testid=chart] canvas").first).to_be_visible()
    source = page.locator("[data-testid=source][data-source=replay]")  # GET /api/sources
    expect(source).to_have_attribute("data-stale", "false")
    shot(page, "01-overview")


def test_add_agent_through_the_form_with_a_field_error(
    page: Any, server: RestartableServer, watch: ConsoleWatch
) -> None:
    page.get_by_test_id("add-agent-toggle").click()
    form = page.get_by_test_id("add-agent-form")
    expect(form).to_be_visible()
    form.get_by_label("Brain", exact=True).select_option("rsi")
    expect(form.get_by_label("Period", exact=True)).to_have_value(
        "14"
    )  # defaults from /api/strategies
    expect(form.get_by_label("Stop Loss %", exact=True)).to_have_value(
        "5"
    )  # defaults from /api/risk/defaults
    form.get_by_label("Name", exact=True).fill(BUYER)
    # RSI(14) is always below 99: a buy on the first decision (an approval, as it is advisory)
    form.get_by_label("Oversold", exact=True).fill("99")
    form.get_by_label("Overbought", exact=True).fill("99.9")
    form.get_by_label("Allowance (USD)", exact=True).fill("-5")
    form.get_by_label("Interval (seconds between decisions)", exact=True).fill("604800")
    form.get_by_label("Mode", exact=True).select_option("advisory")
    for sym in ("BTC", "DOGE", "ETH", "SOL", "XRP"):
        form.get_by_label(sym, exact=True).set_checked(sym == "BTC")

    with watch.expecting(r"status of 422"):
        form.get_by_test_id("create-agent").click()
        error = form.get_by_test_id("error-allowance")
        expect(error).to_contain_text("greater than 0")
    expect(form.get_by_label("Allowance (USD)", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    expect(form.get_by_label("Allowance (USD)", exact=True)).to_be_focused()
    shot(page, "02-add-agent-field-error")

    form.get_by_label("Allowance (USD)", exact=True).fill("10000")
    form.get_by_test_id("create-agent").click()
    expect(form).to_be_hidden()
    buyer = card(page, BUYER)
    expect(buyer).to_be_visible()
    expect(buyer.get_by_test_id("agent-mode")).to_have_attribute("data-mode", "advisory")
    expect(buyer.get_by_test_id("agent-brain")).to_contain_text("RSI(14)")
    expect(buyer.get_by_test_id("agent-equity")).to_have_text("$10,000.00")
    expect(buyer.get_by_test_id("agent-fees")).to_have_text("fees $0.00")  # on the card itself


def test_reject_one_advisory_decision_and_approve_another(
    page: Any, server: RestartableServer
) -> None:
    agent_id = buyer_id(server)
    mine = page.locator(f'[data-testid=approval][data-agent-id="{agent_id}"]')
    # the agent's own first decision waits for approval: reject it
    expect(mine).to_have_count(1)
    first = mine.get_attribute("data-decision-id")
    expect(mine.get_by_test_id("countdown")).to_have_text(re.compile(r"^[0-5]:\d\d$"))
    shot(page, "03-approvals")
    mine.get_by_test_id("reject").click()
    expect(page.locator(f'[data-decision-id="{first}"]')).to_have_count(0)
    statuses = {d["id"]: d["status"] for d in server.get(f"/api/agents/{agent_id}/decisions")}
    assert statuses[first] == "rejected"

    # "Make trade" decides now: another buy, which waits for approval too
    buyer = card(page, BUYER)
    buyer.get_by_test_id("make-trade").click()
    expect(mine).to_have_count(1)
    second = mine.get_attribute("data-decision-id")
    assert second is not None and second != first
    expect(mine.get_by_test_id("waiting")).to_have_text("No newer decision waiting")
    # a person takes their time: several ticks pass and the agent decides again meanwhile;
    # its newer decision waits behind the question instead of replacing it
    asked_at = next(d for d in server.get("/api/decisions", status="pending") if d["id"] == second)
    market_passes(server, asked_at["time"], minutes=5)
    buyer.get_by_test_id("make-trade").click()
    expect(buyer.get_by_test_id("decision-status")).to_have_text("held")
    expect(buyer.get_by_test_id("latest-decision")).to_contain_text(
        f"waiting for your answer on decision {second[:12]}"
    )
    expect(mine.get_by_test_id("waiting")).to_have_text("1 newer decision waiting behind it")
    expect(mine).to_have_attribute("data-decision-id", second)
    expect(mine.get_by_test_id("countdown")).to_have_text(re.compile(r"^[0-5]:\d\d$"))
    shot(page, "03-approval-waiting", full_page=False)
    market_passes(server, asked_at["time"], minutes=10)
    mine.get_by_test_id("approve").click()
    expect(page.locator(f'[data-decision-id="{second}"]')).to_have_count(0)
    statuses = {d["id"]: d["status"] for d in server.get(f"/api/agents/{agent_id}/decisions")}
    assert statuses[second] == "executed"
    expect(page.get_by_test_id("toasts")).to_contain_text("approved → executed")

    # the trade is in the log (and in the API)
    page.get_by_test_id("filter-agent").select_option(agent_id)
    rows = page.locator(f'[data-testid=trade-row][data-agent-id="{agent_id}"]')
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-side", "buy")
    expect(rows.first).to_have_attribute("data-symbol", "BTC")
    assert server.get("/api/trades", agent_id=agent_id)["total"] == 1
    expect(page.locator("[data-testid=trade-row]")).to_have_count(1)  # the filter works
    page.get_by_test_id("filter-agent").select_option("")
    page.get_by_test_id("sort-price").click()
    expect(page.locator('th[aria-sort="ascending"]')).to_contain_text("Price")
    page.get_by_test_id("sort-time").click()
    page.get_by_test_id("trade-log").scroll_into_view_if_needed()
    shot(page, "04-trade-log")


def test_wallet_and_deposit(page: Any, server: RestartableServer, watch: ConsoleWatch) -> None:
    buyer = card(page, BUYER)
    buyer.get_by_test_id("wallet-toggle").click()
    wallet = buyer.get_by_test_id("wallet")
    expect(wallet.get_by_test_id("holdings")).to_contain_text("BTC")
    wallet.get_by_test_id("deposit-open").click()
    amount = wallet.get_by_label("Deposit amount (USD)")
    amount.fill("-1")
    with watch.expecting(r"status of 422"):
        wallet.get_by_role("button", name="Deposit", exact=True).click()
        expect(wallet.get_by_role("alert")).to_contain_text("greater than 0")
    amount.fill("500")
    wallet.get_by_role("button", name="Deposit", exact=True).click()
    expect(wallet.get_by_test_id("wallet-deposits")).to_have_text("$500.00")
    assert server.get(f"/api/agents/{buyer_id(server)}")["wallet"]["deposits"] == "500"
    shot(page, "05-wallet")


def test_toggle_the_mode(page: Any, server: RestartableServer) -> None:
    buyer = card(page, BUYER)
    buyer.get_by_role("button", name="Autonomous").click()
    expect(buyer.get_by_test_id("agent-mode")).to_have_attribute("data-mode", "autonomous")
    assert server.get(f"/api/agents/{buyer_id(server)}")["mode"] == "autonomous"
    expect(buyer.get_by_role("button", name="Autonomous")).to_have_attribute("aria-pressed", "true")


def test_decision_drawer_shows_risk_checks(page: Any) -> None:
    buyer = card(page, BUYER)
    buyer.get_by_test_id("decisions-open").click()
    drawer = page.get_by_test_id("decision-drawer")
    expect(drawer).to_be_visible()
    executed = drawer.locator('[data-testid=decision-item][data-status="executed"]')
    expect(executed).to_have_count(1)
    executed.get_by_role("button").first.click()
    checks = executed.get_by_test_id("risk-checks")
    expect(checks).to_contain_text("cooldown")
    expect(drawer.locator('[data-testid=decision-item][data-status="rejected"]')).to_have_count(1)
    shot(page, "06-decision-drawer", full_page=False)
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()


def test_chart_with_ranges_and_attribution(page: Any) -> None:
    chart = page.get_by_test_id("chart")
    chart.get_by_role("button", name="BTC", exact=True).click()
    expect(chart).to_have_attribute("data-symbol", "BTC")
    expect(chart).not_to_have_attribute("data-bars", "0")
    for label in ("1H", "4H", "1D", "All"):
        chart.get_by_test_id(f"range-{label}").click()
        expect(chart.get_by_test_id(f"range-{label}")).to_have_attribute("aria-pressed", "true")
    # TradingView's attribution link stays on, and the NOTICE is in the footer
    expect(chart.locator('a[href*="tradingview.com"]')).to_have_count(1)
    expect(page.get_by_test_id("notice")).to_contain_text("TradingView")
    chart.scroll_into_view_if_needed()
    shot(page, "07-chart", full_page=False)


def test_a_trade_shows_in_the_log_and_on_the_chart(page: Any, server: RestartableServer) -> None:
    """The acceptance of the issue: make a trade and see it in the log AND on the chart, live
    (the `trade` WebSocket message, no reload)."""
    agent_id = buyer_id(server)
    assert server.get(f"/api/agents/{agent_id}")["mode"] == "autonomous"
    chart = page.get_by_test_id("chart")
    chart.get_by_role("button", name="BTC", exact=True).click()
    expect(chart).to_have_attribute("data-symbol", "BTC")

    rec = server.post(
        f"/api/agents/{agent_id}/orders",
        {"action": "buy", "symbol": "BTC", "notional": "250", "reasoning": "e2e: log and chart"},
    )
    assert rec["status"] == "executed", rec
    key = f"order:{rec['id']}"  # the fill's idempotency key
    stored = server.get("/api/trades", agent_id=agent_id)["trades"]
    trade = next(t for t in stored if t["idempotency_key"] == key)
    bar = int(datetime.fromisoformat(trade["time"].replace("Z", "+00:00")).timestamp()) // 60 * 60

    # in the trade log
    page.get_by_test_id("filter-agent").select_option(agent_id)
    row = page.locator(f'[data-testid=trade-row][data-key="{key}"]')
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-side", "buy")
    expect(row).to_have_attribute("data-symbol", "BTC")

    # on BTC's chart: a buy marker on the trade's 1-minute bar
    marker = chart.locator(f'[data-testid=chart-markers] li[data-key="{key}"]')
    expect(marker).to_have_count(1)
    expect(marker).to_have_attribute("data-side", "buy")
    expect(marker).to_have_attribute("data-agent-id", agent_id)
    expect(marker).to_have_attribute("data-time", str(bar))
    expect(marker).to_have_text("B E2E")
    markers = int(chart.get_attribute("data-markers") or "0")
    listed = chart.locator("[data-testid=chart-markers] li").count()
    assert markers >= 1 and markers == listed  # the count attribute and the list agree
    # and not on another symbol's chart
    chart.get_by_role("button", name="ETH", exact=True).click()
    expect(chart).to_have_attribute("data-symbol", "ETH")
    expect(chart.locator(f'[data-testid=chart-markers] li[data-key="{key}"]')).to_have_count(0)
    chart.get_by_role("button", name="BTC", exact=True).click()
    expect(marker).to_have_count(1)
    assert page.evaluate("window.__sameDocument") is True  # all of it live, without a reload
    chart.scroll_into_view_if_needed()
    shot(page, "07b-trade-on-chart", full_page=False)
    page.get_by_test_id("filter-agent").select_option("")


def test_equity_curves_of_all_agents_on_one_chart(page: Any) -> None:
    """One line series per agent (from the same equity samples as the sparklines), a legend with
    the agents' names, updated live, with TradingView's attribution."""
    equity = page.get_by_test_id("equity-chart")
    equity.scroll_into_view_if_needed()
    expect(equity.locator("canvas").first).to_be_visible()
    names = page.locator("[data-testid=agent-card]").evaluate_all(
        "cards => cards.map(c => c.dataset.name)"
    )
    assert len(names) >= 3
    expect(equity).to_have_attribute("data-series", str(len(names)))
    legend = equity.get_by_test_id("equity-legend")
    expect(legend.locator("li")).to_have_count(len(names))
    for name in names:
        expect(legend).to_contain_text(name)
    colours = legend.locator("li").evaluate_all("items => items.map(i => i.dataset.colour)")
    assert all(colours) and len(set(colours)) == len(colours), colours  # distinct colours
    expect(equity.locator('a[href*="tradingview.com"]')).to_have_count(1)
    # live: the newest sample drawn moves on without a reload
    page.wait_for_function(
        "document.querySelector('[data-testid=equity-chart]').dataset.last !== '0'"
    )
    last = int(equity.get_attribute("data-last") or "0")
    page.wait_for_function(
        "t => +document.querySelector('[data-testid=equity-chart]').dataset.last > t", arg=last
    )
    assert int(equity.get_attribute("data-points") or "0") >= len(names)
    assert page.evaluate("window.__sameDocument") is True
    shot(page, "07c-equity-curves", full_page=False)


def test_kill_switch_by_keyboard_and_release(page: Any, server: RestartableServer) -> None:
    kill = page.get_by_test_id("kill-switch")
    button = kill.get_by_role("button", name="Kill switch")
    dialog = page.get_by_test_id("confirm-dialog")
    # a real button: Enter opens the confirmation, Escape cancels it
    button.focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(kill).to_have_attribute("data-on", "false")

    button.click()
    expect(dialog).to_be_visible()
    shot(page, "08-kill-switch-confirm", full_page=False)
    dialog.get_by_test_id("confirm-ok").click()
    expect(kill).to_have_attribute("data-on", "true")
    expect(kill).to_contain_text("Kill switch ON")
    assert server.get("/api/kill-switch")["on"] is True
    expect(page.get_by_test_id("active-agents")).to_have_text(re.compile(r"^0 / "))
    expect(card(page, BUYER).get_by_test_id("make-trade")).to_be_disabled()

    kill.get_by_role("button", name="Release kill switch").click()
    expect(kill).to_have_attribute("data-on", "false")
    assert server.get("/api/kill-switch")["on"] is False
    buyer = card(page, BUYER)
    buyer.get_by_test_id("pause-resume").click()  # agents stay stopped until resumed
    expect(buyer.get_by_test_id("agent-status")).to_have_text("running")


def test_llm_setup_add_test_and_remove_an_endpoint(
    page: Any, server: RestartableServer, watch: ConsoleWatch
) -> None:
    """The LLM setup panel against a local simulated Ollama: add, test, models, remove."""
    with SimServer(models=["alpha:7b", "beta:8b"]) as sim:
        toggle = page.get_by_test_id("llm-toggle")
        toggle.focus()
        page.keyboard.press("Enter")  # keyboard usable: a real button
        panel = page.get_by_test_id("llm-setup")
        expect(panel).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(panel.get_by_role("heading", name="LLM setup")).to_be_focused()

        form = panel.get_by_test_id("llm-add-form")
        form.get_by_label("Endpoint name", exact=True).fill("bad name!")
        form.get_by_label("Kind", exact=True).select_option("ollama")
        form.get_by_label("Base URL", exact=True).fill(sim.url)
        form.get_by_label("Max concurrency", exact=True).fill("2")
        with watch.expecting(r"status of 422"):
            form.get_by_test_id("llm-add").click()
            expect(form.get_by_test_id("llm-error-name")).to_contain_text("pattern")
        name_field = form.get_by_label("Endpoint name", exact=True)
        expect(name_field).to_have_attribute("aria-invalid", "true")
        expect(name_field).to_be_focused()

        name_field.fill("e2e-sim")
        expect(form.get_by_label("API key (optional)", exact=True)).to_have_attribute(
            "type", "password"
        )
        form.get_by_test_id("llm-add").click()
        endpoint = panel.locator('[data-testid=llm-endpoint][data-name="e2e-sim"]')
        expect(endpoint).to_be_visible()
        expect(endpoint.get_by_test_id("llm-kind")).to_have_text("ollama")
        expect(endpoint.get_by_test_id("llm-url")).to_have_text(sim.url)
        expect(endpoint.get_by_test_id("llm-key-set")).to_have_count(0)
        expect(form.get_by_test_id("llm-error-name")).to_have_count(0)
        saved = {e["name"]: e for e in server.get("/api/llm/endpoints")}
        assert saved["e2e-sim"]["max_concurrency"] == 2
        assert saved["e2e-sim"]["has_api_key"] is False

        # the same name again: 409, shown next to the name field
        name_field.fill("e2e-sim")
        form.get_by_label("Base URL", exact=True).fill(sim.url)
        with watch.expecting(r"status of 409"):
            form.get_by_test_id("llm-add").click()
            expect(form.get_by_test_id("llm-error-name")).to_contain_text("exists")
        name_field.fill("")
        expect(form.get_by_test_id("llm-error-name")).to_have_count(0)  # editing clears it

        endpoint.get_by_test_id("llm-test").click()
        result = endpoint.get_by_test_id("llm-test-result")
        expect(result).to_have_attribute("data-ok", "true")
        expect(result).to_contain_text(re.compile(r"OK · [\d.]+ m?s · 2 model"))  # "11.6 ms"
        models = endpoint.get_by_test_id("llm-models")
        expect(models.locator("li[data-model]")).to_have_count(2)
        expect(models.locator('li[data-model="alpha:7b"]')).to_contain_text("alpha:7b")
        expect(models.locator('li[data-model="beta:8b"]')).to_contain_text("beta:8b")
        expect(endpoint.get_by_test_id("llm-loaded")).to_be_visible()
        shot(page, "08b-llm-setup")

        # the add-agent form offers the endpoint and its models for the "llm" brain
        page.get_by_test_id("add-agent-toggle").click()
        agent_form = page.get_by_test_id("add-agent-form")
        agent_form.get_by_label("Brain", exact=True).select_option("llm")
        chosen = agent_form.locator("#aa-params-endpoint")
        expect(chosen.locator('option[value="e2e-sim"]')).to_have_count(1)
        chosen.select_option("e2e-sim")
        model = agent_form.locator("#aa-params-model")
        expect(model.locator("option")).to_have_text(["alpha:7b", "beta:8b"])
        expect(model).to_have_value("alpha:7b")
        page.get_by_test_id("add-agent-toggle").click()
        expect(agent_form).to_be_hidden()

        # remove, after a confirmation (cancelled once)
        dialog = page.get_by_test_id("confirm-dialog")
        endpoint.get_by_test_id("llm-remove").click()
        expect(dialog).to_be_visible()
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(endpoint).to_be_visible()
        endpoint.get_by_test_id("llm-remove").click()
        dialog.get_by_test_id("confirm-ok").click()
        expect(endpoint).to_have_count(0)
        assert "e2e-sim" not in {e["name"] for e in server.get("/api/llm/endpoints")}

        panel.get_by_role("heading", name="LLM setup").focus()
        page.keyboard.press("Escape")
        expect(panel).to_be_hidden()
        expect(toggle).to_be_focused()
    assert watch.errors == [], watch.report()


def test_decision_drawer_shows_the_llm_calls(
    page: Any, server: RestartableServer, watch: ConsoleWatch
) -> None:
    """An LLM agent (against the simulated Ollama): the drawer fetches the decision's full record
    and shows each model call: purpose, model, latency, tokens, prompt and raw response, and the
    parser's warnings of the decision."""
    with SimServer(models=["alpha:7b"]) as sim:
        sim.script(  # the first answer parses, with warnings
            "alpha:7b",
            ['Answer: {"action": "hold", "symbol": null, "reasoning": "flat", "confidence": 0.5}'],
        )
        server.post(
            "/api/llm/endpoints", {"name": "e2e-drawer", "kind": "ollama", "base_url": sim.url}
        )
        agent = server.post(
            "/api/agents",
            {
                "name": "E2E LLM",
                "brain": "llm",
                "symbols": ["BTC"],
                "interval_seconds": 60,
                "params": {"endpoint": "e2e-drawer", "model": "alpha:7b"},
            },
        )
        agent_id = agent["id"]
        try:
            llm_card = card(page, "E2E LLM")
            expect(llm_card).to_be_visible()
            expect(page.get_by_test_id("equity-chart")).to_have_attribute("data-series", "5")
            decisions: list[Any] = []
            deadline = time.monotonic() + 30
            while not decisions and time.monotonic() < deadline:
                decisions = server.get(f"/api/agents/{agent_id}/decisions")
                time.sleep(0.3)
            assert decisions, "the LLM agent made no decision"
            detail = server.get(f"/api/agents/{agent_id}/decisions/{decisions[-1]['id']}")
            assert detail["llm_calls"], detail
            call = detail["llm_calls"][0]

            llm_card.get_by_test_id("decisions-open").click()
            drawer = page.get_by_test_id("decision-drawer")
            expect(drawer).to_be_visible()
            item = drawer.get_by_test_id("decision-item").last
            item.get_by_role("button").first.click()
            calls = item.get_by_test_id("llm-call")
            expect(calls.first).to_be_visible()
            expect(item.get_by_test_id("decision-warnings")).to_contain_text(
                "ignored text around the JSON"
            )
            first = calls.first
            expect(first).to_have_attribute("data-purpose", call["purpose"])
            expect(first.get_by_test_id("llm-call-model")).to_contain_text("alpha:7b")
            expect(first.get_by_test_id("llm-call-tokens")).to_contain_text(" in · ")
            expect(first).to_contain_text("Latency")
            raw = first.get_by_test_id("llm-call-raw")
            expect(raw.locator("pre")).to_be_visible()
            expect(raw.locator("pre")).to_contain_text(call["raw_response"][:40].strip())
            prompt = first.get_by_test_id("llm-call-prompt")
            body = prompt.locator("pre").first
            expect(body).to_be_hidden()  # collapsed until asked for
            prompt.locator("summary").click()
            expect(body).to_be_visible()
            content = call["messages"][0]["content"]
            expect(body).to_contain_text(content.strip().splitlines()[0][:60].strip())
            expect(prompt.locator(".msg")).to_have_count(len(call["messages"]))
            first.scroll_into_view_if_needed()
            shot(page, "08c-decision-drawer-llm", full_page=False)
            page.keyboard.press("Escape")
            expect(drawer).to_be_hidden()
        finally:
            httpx.delete(f"{server.url}/api/agents/{agent_id}", timeout=30).raise_for_status()
            httpx.delete(
                f"{server.url}/api/llm/endpoints/e2e-drawer", timeout=30
            ).raise_for_status()
        expect(card(page, "E2E LLM")).to_have_count(0)
        expect(page.get_by_test_id("equity-chart")).to_have_attribute("data-series", "4")
    assert watch.errors == [], watch.report()


def test_reconnects_after_a_server_restart(
    page: Any, server: RestartableServer, watch: ConsoleWatch
) -> None:
    conn = page.get_by_test_id("connection")
    with watch.expecting(r"WebSocket connection to .* failed", r"ERR_CONNECTION_REFUSED"):
        server.stop()
        expect(conn).to_have_attribute("data-state", "reconnecting")
        expect(conn).to_contain_text("Reconnecting")
        shot(page, "09-reconnecting", full_page=False)
        time.sleep(1.0)
        server.start()  # same port, same data
        expect(conn).to_have_attribute("data-state", "live", timeout=30_000)
    first = page.get_by_test_id("price-bar").get_attribute("data-ts")
    page.wait_for_function(
        "ts => document.querySelector('[data-testid=price-bar]').dataset.ts !== ts", arg=first
    )
    expect(card(page, BUYER)).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True  # it reconnected by itself


def test_phone_layout(page: Any) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.wait_for_timeout(300)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"the page scrolls sideways on a phone by {overflow}px"
        shot(page, "10-phone")
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


def test_trade_log_with_10000_rows(
    page: Any, server: RestartableServer, watch: ConsoleWatch
) -> None:
    """A second tab whose trade history is 10,000 synthetic rows: only a window is rendered."""
    total = 10_000

    def trade(i: int) -> dict[str, Any]:
        age = total - 1 - i  # minutes after 2020-01-01 00:00; row 0 is the newest
        minute, hour, day = f"{age % 60:02d}", f"{age // 60 % 24:02d}", f"{1 + age // 1440:02d}"
        return {
            "agent_id": "synthetic",
            "agent_name": "Synthetic",
            "symbol": ["BTC", "ETH", "SOL"][i % 3],
            "side": "buy" if i % 2 else "sell",
            "quantity": "0.5",
            "price": str(1000 + i),
            "fee": "0.5",
            "notional": str(500 + i / 2),
            "time": f"2020-01-{day}T{hour}:{minute}:00Z",
            "idempotency_key": f"synthetic:{i}",
        }

    def handle(route: Any) -> None:
        query = parse_qs(urlparse(route.request.url).query)
        limit, offset = int(query["limit"][0]), int(query.get("offset", ["0"])[0])
        rows = [trade(i) for i in range(offset, min(total, offset + limit))]
        body = {"trades": rows, "total": total, "limit": limit, "offset": offset}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    tab = page.context.new_page()
    watch.attach(tab)
    try:
        tab.route("**/api/trades?*", handle)
        tab.goto(server.url + "/")
        tab.get_by_test_id("filter-agent").select_option("synthetic")
        count = tab.get_by_test_id("trade-count")
        expect(count).to_have_attribute("data-shown", str(total), timeout=30_000)
        rendered = tab.locator("[data-testid=trade-row]").count()
        assert 0 < rendered < 80, f"{rendered} rows in the DOM for {total} trades"
        tab.locator(".scroller").evaluate("el => { el.scrollTop = el.scrollHeight; }")
        last = tab.locator("[data-testid=trade-row]").last
        expect(last).to_contain_text("2020-01-01 00:00:00")  # the oldest synthetic trade
        assert tab.locator("[data-testid=trade-row]").count() < 80
        tab.get_by_test_id("sort-price").click()  # sorting 10,000 rows stays usable
        tab.locator(".scroller").evaluate("el => { el.scrollTop = 0; }")
        expect(tab.locator("[data-testid=trade-row]").first).to_contain_text("1,000.00")
        tab.get_by_test_id("trade-log").scroll_into_view_if_needed()
        shot(tab, "11-trade-log-10000", full_page=False)
    finally:
        tab.close()


def test_no_console_errors(page: Any, watch: ConsoleWatch) -> None:
    page.wait_for_timeout(500)
    assert watch.errors == [], watch.report()
