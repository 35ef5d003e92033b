"""The dashboard's equity panel and everyday controls in a real browser (Debian's chromium driven
by playwright) against a real server replaying the demo: equity history from the server after a
reload, return % against funding, deposit markers, following new samples; placing an order, the
realized P&L in the trade log; keep-alive and timeout in the LLM endpoint form.

The tests share one server, browser and page and run in file order."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest
from e2e_helpers import (
    ConsoleWatch,
    RestartableServer,
    browser_or_skip,
    expect,
    live_page,
    restartable_server,
    shot,
)

TIMEOUT = 30_000  # ms, for expectations in the page
TRADER = "E2E Trader"
FAST = {"cooldown_seconds": 0, "max_allocation_pct": "50"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableServer]:
    browser_or_skip()
    with restartable_server(tmp_path_factory.mktemp("dashboard-controls")) as srv:
        yield srv


@pytest.fixture(scope="module")
def watch() -> ConsoleWatch:
    return ConsoleWatch()


@pytest.fixture(scope="module")
def page(server: RestartableServer, watch: ConsoleWatch) -> Iterator[Any]:
    with live_page(server.url, watch, TIMEOUT) as pg:
        yield pg


@pytest.fixture(scope="module")
def trader(server: RestartableServer) -> dict[str, Any]:
    """An autonomous agent of our own (the demo agents' state depends on the market)."""
    return server.post(
        "/api/agents",
        {
            "name": TRADER,
            "brain": "rsi",
            "params": {"oversold": 0.01, "overbought": 99.99},  # it never trades by itself
            "symbols": ["BTC", "XRP"],
            "allowance": "1000",
            "interval_seconds": 3600,
            "risk": FAST,
        },
    )


def card(page: Any, name: str) -> Any:
    return page.locator(f'[data-testid=agent-card][data-name="{name}"]')


def dataset(page: Any, name: str) -> str:
    return str(page.get_by_test_id("equity-chart").get_attribute(f"data-{name}") or "")


def wait_market_minutes(server: RestartableServer, minutes: int) -> None:
    """Until the replay clock is ``minutes`` past the oldest agent's creation."""
    created = min(
        datetime.fromisoformat(a["created_at"].replace("Z", "+00:00"))
        for a in server.get("/api/agents")
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        clock = datetime.fromisoformat(server.get("/health")["clock"].replace("Z", "+00:00"))
        if (clock - created).total_seconds() >= minutes * 60:
            return
        time.sleep(0.3)
    pytest.fail(f"the replay did not advance {minutes} minutes")


def test_place_an_order_from_the_dashboard(
    page: Any, server: RestartableServer, trader: dict[str, Any], watch: ConsoleWatch
) -> None:
    page.evaluate("window.__sameDocument = true")
    mine = card(page, TRADER)
    expect(mine).to_be_visible()
    mine.get_by_test_id("order-open").click()
    form = mine.get_by_test_id("order-form")
    expect(form).to_be_visible()
    form.get_by_label("Symbol", exact=True).select_option("XRP")
    amount = form.get_by_label("Amount (USD)", exact=True)
    amount.fill("-5")
    with watch.expecting(r"status of 422"):
        form.get_by_test_id("order-place").click()
        expect(form.get_by_test_id("order-error-size")).to_contain_text("greater than 0")
    expect(amount).to_be_focused()
    amount.fill("200")
    form.get_by_label("Note (optional)", exact=True).fill("e2e: my own XRP")
    form.get_by_test_id("order-place").click()
    expect(form).to_be_hidden()

    trades = server.get("/api/trades", agent_id=trader["id"])["trades"]
    (bought,) = trades
    assert (bought["side"], bought["symbol"], bought["reasoning"]) == (
        "buy",
        "XRP",
        "e2e: my own XRP",
    )
    decision = server.get(f"/api/agents/{trader['id']}/decisions")[0]
    assert (decision["source"], decision["status"]) == ("manual", "executed")
    row = page.locator(f'[data-testid=trade-row][data-key="{bought["idempotency_key"]}"]')
    expect(row).to_have_attribute("data-side", "buy")
    # XRP at the instrument's precision (4 decimals: 0.5095, not 0.51)
    price = Decimal(bought["price"]).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    expect(row.locator("td[data-col=price]")).to_have_text(f"{price}")
    expect(row.locator("td[data-col=realized_pnl]")).to_have_text("")  # a buy realizes nothing
    shot(page, "c01-order-placed", full_page=False)


def test_a_sell_shows_its_realized_pnl_live(
    page: Any, server: RestartableServer, trader: dict[str, Any]
) -> None:
    wallet = server.get(f"/api/agents/{trader['id']}")["wallet"]
    (position,) = [p for p in wallet["positions"] if p["symbol"] == "XRP"]
    mine = card(page, TRADER)
    mine.get_by_test_id("order-open").click()
    form = mine.get_by_test_id("order-form")
    form.get_by_test_id("order-sell").click()
    form.get_by_label("Symbol", exact=True).select_option("XRP")
    form.get_by_test_id("order-size-unit").click()  # a quantity instead of USD
    expect(form.get_by_label("Quantity (XRP)", exact=True)).to_be_visible()
    form.get_by_test_id("order-whole").check()  # 25 decimals held: sell it all, not a typed part
    expect(form).to_contain_text(f"The whole holding ({int(Decimal(position['quantity']))}.")
    form.get_by_test_id("order-place").click()
    expect(form).to_be_hidden()

    sold = next(
        t for t in server.get("/api/trades", agent_id=trader["id"])["trades"] if t["side"] == "sell"
    )
    realized = Decimal(sold["realized_pnl"]).quantize(Decimal("0.01"), ROUND_HALF_UP)
    sign = "\u2212" if realized < 0 else "+" if realized > 0 else ""
    text = f"{sign}${abs(realized):,.2f}"
    row = page.locator(f'[data-testid=trade-row][data-key="{sold["idempotency_key"]}"]')
    expect(row.locator("td[data-col=realized_pnl]")).to_have_text(text)  # from the live message
    assert page.evaluate("window.__sameDocument") is True  # live, without a reload


def test_a_deposit_is_marked_and_not_profit(page: Any, trader: dict[str, Any]) -> None:
    mine = card(page, TRADER)
    pnl = mine.get_by_test_id("agent-pnl").inner_text()  # flat: no position is open
    legend = page.locator(f'[data-testid=equity-legend] li[data-agent-id="{trader["id"]}"]')
    mine.get_by_test_id("wallet-toggle").click()
    mine.get_by_test_id("deposit-open").click()
    mine.get_by_label("Deposit amount (USD)").fill("500")
    mine.get_by_role("button", name="Deposit", exact=True).click()
    expect(mine.get_by_test_id("wallet-deposits")).to_have_text("$500.00")
    marks = page.locator(f'[data-testid=equity-deposits] li[data-agent-id="{trader["id"]}"]')
    expect(marks).to_have_count(1)
    expect(marks).to_have_attribute("data-amount", "500")
    # the deposit is funding: the P&L stays, the return stays within a percent (not +50%)
    expect(mine.get_by_test_id("agent-pnl")).to_contain_text(pnl.split(" (")[0])
    expect(legend).to_contain_text(re.compile(r"\b0\.\d\d%"))


def test_percent_return_and_dollar_equity(page: Any, trader: dict[str, Any]) -> None:
    chart = page.get_by_test_id("equity-chart")
    chart.scroll_into_view_if_needed()
    expect(chart).to_have_attribute("data-mode", "pct")  # the default: one scale for all
    legend = chart.locator(f'[data-testid=equity-legend] li[data-agent-id="{trader["id"]}"]')
    expect(legend).to_contain_text("%")
    shot(page, "c02-equity-percent", full_page=False)
    chart.get_by_test_id("equity-mode-usd").click()
    expect(chart).to_have_attribute("data-mode", "usd")
    expect(chart.get_by_test_id("equity-mode-usd")).to_have_attribute("aria-pressed", "true")
    expect(legend).to_contain_text(re.compile(r"\$1,\d{3}\.\d\d"))
    shot(page, "c03-equity-dollars", full_page=False)
    chart.get_by_test_id("equity-mode-pct").click()
    expect(chart).to_have_attribute("data-mode", "pct")


def test_the_chart_follows_new_samples_until_panned_away(page: Any) -> None:
    chart = page.get_by_test_id("equity-chart")
    chart.get_by_test_id("equity-fit").click()
    expect(chart).to_have_attribute("data-follow", "true")
    last = int(dataset(page, "last"))
    follows = (
        "t => { const d = document.querySelector('[data-testid=equity-chart]').dataset;"
        " return +d.last > t && +d.visibleTo >= +d.last; }"
    )
    page.wait_for_function(follows, arg=last)  # new samples come into view by themselves

    canvas = chart.locator(".canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.9, y, steps=8)  # drag right: look back
    page.mouse.up()
    expect(chart).to_have_attribute("data-follow", "false")
    panned = int(dataset(page, "visible-to"))
    last = int(dataset(page, "last"))
    page.wait_for_function(
        "t => +document.querySelector('[data-testid=equity-chart]').dataset.last > t", arg=last
    )
    assert int(dataset(page, "visible-to")) <= panned + 60  # the view stays where the user put it
    chart.get_by_test_id("equity-latest").click()
    expect(chart).to_have_attribute("data-follow", "true")
    page.wait_for_function(follows, arg=int(dataset(page, "last")))


def test_equity_history_is_loaded_from_the_server_after_a_reload(
    page: Any, server: RestartableServer, trader: dict[str, Any]
) -> None:
    wait_market_minutes(server, 20)
    page.evaluate("window.__reloaded = true")
    page.reload()
    page.wait_for_selector('[data-testid=connection][data-state="live"]')
    chart = page.get_by_test_id("equity-chart")
    expect(chart).to_have_attribute("data-loaded", "1")
    created = {
        a["id"]: int(datetime.fromisoformat(a["created_at"].replace("Z", "+00:00")).timestamp())
        for a in server.get("/api/agents")
    }
    first = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('[data-testid=agent-card]')]"
        ".map(c => [c.dataset.agentId, +c.querySelector('[data-testid=sparkline]').dataset.first]))"
    )
    for agent_id, born in created.items():  # from the start, not from this page's messages
        assert first[agent_id] <= born + 1, (agent_id, first[agent_id], born)
    # the deposit comes back from the server's history, marked again
    marks = page.locator(f'[data-testid=equity-deposits] li[data-agent-id="{trader["id"]}"]')
    expect(marks).to_have_count(1)
    expect(marks).to_have_attribute("data-amount", "500")
    history = server.get(f"/api/agents/{trader['id']}/equity")
    assert Decimal(history["points"][-1]["funding"]) == Decimal(1500)
    shot(page, "c04-equity-after-reload", full_page=False)


def test_llm_endpoint_form_sets_keep_alive_and_timeout(
    page: Any, server: RestartableServer
) -> None:
    page.get_by_test_id("llm-toggle").click()
    panel = page.get_by_test_id("llm-setup")
    form = panel.get_by_test_id("llm-add-form")
    form.get_by_label("Endpoint name", exact=True).fill("e2e-keep")
    form.get_by_label("Base URL", exact=True).fill("http://127.0.0.1:11434")
    form.get_by_label("Keep-alive", exact=True).select_option("keep")
    form.get_by_label("Timeout (seconds per call)", exact=True).fill("15")
    form.get_by_test_id("llm-add").click()
    endpoint = panel.locator('[data-testid=llm-endpoint][data-name="e2e-keep"]')
    expect(endpoint).to_contain_text("keep")
    expect(endpoint).to_contain_text("15 s")
    saved = {e["name"]: e for e in server.get("/api/llm/endpoints")}["e2e-keep"]
    assert (saved["keep_alive"], saved["timeout_seconds"]) == ("keep", 15.0)
    httpx.delete(f"{server.url}/api/llm/endpoints/e2e-keep", timeout=30).raise_for_status()
    page.get_by_test_id("llm-toggle").click()


def test_no_console_errors(page: Any, watch: ConsoleWatch) -> None:
    page.wait_for_timeout(300)
    assert watch.errors == [], watch.report()
