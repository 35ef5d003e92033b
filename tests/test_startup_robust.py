"""One bad stored agent or LLM endpoint, source or setting never keeps the server from starting:
it is skipped, logged, listed in /health and `phantomex status`, and can be deleted from there.

The damage is done the way it happens in life: rows of a real SQLite database edited behind the
server's back (an outdated strategy name, a hand-edited JSON column, a stored URL that a newer
version refuses), and a settings mistake in the environment."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
from conftest import serve

TIMEOUT = 30
GOOD = {"name": "good-llm", "kind": "ollama", "base_url": "http://127.0.0.1:9"}
BAD = {"name": "bad-llm", "kind": "ollama", "base_url": "http://127.0.0.1:99999"}


def damage(db: Path, unknown_brain: str, bad_json: str) -> None:
    """Break two agents and store an endpoint whose port is out of range."""
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE agents SET brain = 'retired_strategy' WHERE id = ?", (unknown_brain,))
        conn.execute("UPDATE agents SET params = '{not json' WHERE id = ?", (bad_json,))
        (value,) = conn.execute(
            "SELECT value FROM kernel_state WHERE key = 'llm_endpoints'"
        ).fetchone()
        saved = json.loads(value)
        saved["endpoints"].append({**BAD, "timeout_seconds": 60.0})
        conn.execute(
            "UPDATE kernel_state SET value = ? WHERE key = 'llm_endpoints'", (json.dumps(saved),)
        )


def test_bad_stored_items_and_settings_are_skipped_listed_and_deletable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serve(data) as srv:
        agents = {a["name"]: a["id"] for a in srv.get("/api/agents")}
        assert len(agents) >= 3
        assert srv.post("/api/llm/endpoints", GOOD)["name"] == "good-llm"
    first, second, *rest = agents.values()
    damage(data / "phantomex.db", first, second)

    broken_env = {"PHANTOMEX_SOURCES": '["replay", "no_such_source"]', "PHANTOMEX_WARMUP_BARS": "x"}
    with serve(data, **broken_env) as srv:
        health = srv.get("/health")
        found = {(p["kind"], p.get("id") or p["name"]): p for p in health["problems"]}
        assert set(found) == {
            ("agent", first),
            ("agent", second),
            ("llm_endpoint", "bad-llm"),
            ("source", "no_such_source"),
            ("setting", "warmup_bars"),
        }, health["problems"]
        assert "retired_strategy" in found["agent", first]["reason"]
        assert "unknown source 'no_such_source'" in found["source", "no_such_source"]["reason"]
        assert "Port out of range" in found["llm_endpoint", "bad-llm"]["reason"]
        assert found["setting", "warmup_bars"]["delete"] is None
        assert health["agents"] == len(rest)
        assert sorted(a["id"] for a in srv.get("/api/agents")) == sorted(rest)
        assert [e["name"] for e in srv.get("/api/llm/endpoints")] == ["good-llm"]
        log = srv.server_output()
        assert "skipped agent" in log and "skipped llm_endpoint 'bad-llm'" in log
        assert "Traceback" not in log

        rc, out, err = srv.cli("status")
        assert rc == 0, err
        assert "5 item(s) skipped at start-up" in out
        assert first in out and "bad-llm" in out and "no_such_source" in out

        # deleted from there: the agent by the CLI, the others by their listed DELETE path
        rc, out, err = srv.cli("agents", "remove", second, "--yes")
        assert rc == 0, err
        for key in (("agent", first), ("llm_endpoint", "bad-llm")):
            resp = httpx.delete(srv.url + found[key]["delete"], timeout=TIMEOUT)
            assert resp.status_code == 200, resp.text
        left = {(p["kind"], p["name"]) for p in srv.get("/health")["problems"]}
        assert left == {("source", "no_such_source"), ("setting", "warmup_bars")}
        assert [e["name"] for e in srv.get("/api/llm/endpoints")] == ["good-llm"]

    with serve(data) as srv:  # fixed: nothing is skipped, the deleted stay deleted
        health = srv.get("/health")
        assert health["problems"] == [] and health["agents"] == len(rest)
        assert [e["name"] for e in srv.get("/api/llm/endpoints")] == ["good-llm"]


def test_a_stored_endpoint_that_cannot_load_can_be_replaced(tmp_path: Path) -> None:
    """Adding an endpoint under the broken one's name fixes it (the stored entry is replaced)."""
    data = tmp_path / "data"
    with serve(data, PHANTOMEX_DEMO="false") as srv:
        srv.post("/api/llm/endpoints", GOOD)
    with sqlite3.connect(data / "phantomex.db") as conn:
        saved = {"endpoints": [BAD]}
        conn.execute(
            "UPDATE kernel_state SET value = ? WHERE key = 'llm_endpoints'", (json.dumps(saved),)
        )
    with serve(data, PHANTOMEX_DEMO="false") as srv:
        assert [p["name"] for p in srv.get("/health")["problems"]] == ["bad-llm"]
        fixed = srv.post("/api/llm/endpoints", {**BAD, "base_url": "http://127.0.0.1:9999"})
        assert fixed["base_url"] == "http://127.0.0.1:9999"
        assert srv.get("/health")["problems"] == []
    with serve(data, PHANTOMEX_DEMO="false") as srv:
        assert srv.get("/health")["problems"] == []
        assert [e["base_url"] for e in srv.get("/api/llm/endpoints")] == ["http://127.0.0.1:9999"]


def test_no_usable_source_still_starts(tmp_path: Path) -> None:
    with serve(tmp_path / "data", PHANTOMEX_SOURCES='["no_such_source"]') as srv:
        health = srv.get("/health")
        assert [(p["kind"], p["name"]) for p in health["problems"]] == [
            ("source", "no_such_source")
        ]
        assert health["agents"] == 0 and srv.get("/api/market/prices") == []


def test_the_dashboard_shows_what_was_skipped_and_deletes_it(tmp_path: Path) -> None:
    from e2e_helpers import CHROMIUM, CHROMIUM_ARGS, browser_or_skip, restartable_server, shot
    from playwright.sync_api import expect, sync_playwright

    browser_or_skip()
    with restartable_server(tmp_path / "data") as srv:
        broken = srv.get("/api/agents")[0]
        srv.stop()
        with sqlite3.connect(srv.data_dir / "phantomex.db") as conn:
            conn.execute("UPDATE agents SET name = ' ' WHERE id = ?", (broken["id"],))
        srv.extra_env["PHANTOMEX_SOURCES"] = '["replay", "no_such_source"]'
        srv.start()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT * 1000)
            page.goto(srv.url + "/")
            banner = page.get_by_test_id("problems-banner")
            expect(banner).to_contain_text("2 items skipped at start-up")
            expect(banner.locator("[data-kind=source]")).to_contain_text("no_such_source")
            agent = banner.locator("[data-kind=agent]")
            expect(agent).to_contain_text("name: String should have at least 1 character")
            shot(page, "problems-banner")
            agent.get_by_role("button", name="Delete").click()
            agent.get_by_role("button", name="Delete for good").click()
            expect(banner).to_contain_text("1 item skipped at start-up")
            expect(banner.locator("[data-kind=agent]")).to_have_count(0)
            browser.close()
        assert [p["kind"] for p in srv.get("/health")["problems"]] == ["source"]
        assert broken["id"] not in {a["id"] for a in srv.get("/api/agents")}
