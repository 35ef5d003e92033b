"""LLM agents in backtests: the response cache makes a re-run exact, and blind mode hides the
real symbols, dates and prices from the model (every prompt it got is checked)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import free_port, run_cli, server_env
from fakeapi import FakeAPI, Reply, Request

from phantomex.devtools.llm_sim.server import SimServer

WINDOW = ("--from", "2023-04-20T00:00", "--to", "2023-04-20T00:40")


@pytest.fixture
def model() -> Iterator[FakeAPI]:
    """The simulated Ollama server behind a recording proxy (every prompt is kept)."""
    with SimServer(models=["llama3.2"]) as sim, FakeAPI() as proxy:

        def forward(request: Request) -> Reply:
            resp = httpx.request(
                request.method,
                sim.url + request.path,
                content=request.body,
                headers={"content-type": request.headers.get("content-type", "")},
                timeout=30,
            )
            return Reply(resp.status_code, resp.content, {"Content-Type": "application/json"})

        proxy.fallback(forward)
        yield proxy


def _setup(tmp_path: Path, model: FakeAPI) -> dict[str, str]:
    config = tmp_path / "phantomex.toml"
    config.write_text(
        f'[[llm_endpoints]]\nname = "sim"\nkind = "ollama"\nbase_url = "{model.url}"\n'
    )
    (tmp_path / "bot.toml").write_text(
        'brain = "llm"\n[params]\nendpoint = "sim"\nmodel = "llama3.2"\n'
    )
    env = server_env(free_port(), tmp_path / "data")
    env["PHANTOMEX_CONFIG"] = str(config)
    return env


def _backtest(env: dict[str, str], tmp_path: Path, *extra: str) -> dict[str, object]:
    code, out, err = run_cli(
        "backtest", "--dataset", "demo", "--symbols", "BTC", *WINDOW,
        "--agent", str(tmp_path / "bot.toml"), "--json", *extra, env=env, timeout=600,
    )  # fmt: skip
    assert code == 0, err
    result: dict[str, object] = json.loads(out)
    result.pop("elapsed_seconds")
    return result


def _prompts(model: FakeAPI) -> list[str]:
    return [r.body.decode() for r in model.requests if r.path == "/api/chat"]


def test_a_cached_llm_backtest_reruns_exactly_without_the_model(
    tmp_path: Path, model: FakeAPI
) -> None:
    env = _setup(tmp_path, model)
    first = _backtest(env, tmp_path)
    asked = len(_prompts(model))
    assert asked >= 40, "one LLM decision per bar"
    assert "errors" not in first
    again = _backtest(env, tmp_path)
    assert len(_prompts(model)) == asked, "every answer came from the project's cache"
    # the report says what the model did (issue 16, defect 8): the same answers, from the cache
    llm, cached = first.pop("llm"), again.pop("llm")
    assert again == first
    assert isinstance(llm, dict) and isinstance(cached, dict)
    assert llm["decisions"] == cached["decisions"] >= 40
    assert llm["calls"] == asked and llm["cache_hits"] == 0 and llm["tokens_in"] > 0
    assert llm["valid_first_try"] + llm["repaired"] + llm["bad_output_holds"] <= llm["decisions"]
    assert llm["latency_p50_seconds"] is not None and llm["latency_p95_seconds"] is not None
    assert cached["cache_hits"] == cached["calls"] == asked
    assert cached["latency_p50_seconds"] is None  # no live call
    assert cached["answers"] == llm["answers"]
    assert all(a["action"] in ("buy", "sell", "hold") and a["reasoning"] for a in llm["answers"])

    uncached = _backtest(env, tmp_path, "--no-llm-cache")
    assert len(_prompts(model)) == 2 * asked
    assert uncached["trades"] == first["trades"]  # the simulated model is deterministic


def test_blind_mode_shows_the_model_no_real_symbol_date_or_price(
    tmp_path: Path, model: FakeAPI
) -> None:
    env = _setup(tmp_path, model)
    real = _backtest(env, tmp_path, "--no-llm-cache")
    prompts = len(_prompts(model))
    blind = _backtest(env, tmp_path, "--blind", "--blind-seed", "5", "--no-llm-cache")
    seen = _prompts(model)[prompts:]
    assert len(seen) >= 40
    text = "\n".join(seen)
    assert "ASSET1" in text
    assert "BTC" not in text and "2023" not in text and "Bitcoin" not in text
    first_close = "28"  # BTC traded near 28,000 USD then; the rescaled prices don't start so
    assert not any(f'"{first_close}' in p or f" {first_close}," in p for p in seen)
    assert blind["bars"] == real["bars"] and blind["start"] == real["start"]
    assert all(t["symbol"] == "BTC" for t in blind["trades"])  # type: ignore[union-attr, index]
