"""The LLM simulator over loopback: documented shapes, model accounting, queueing, scripts and
the deterministic default "model"."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import typer
from conftest import free_port
from typer.testing import CliRunner

from phantomex.devtools.llm_sim import behaviour
from phantomex.devtools.llm_sim.protocol import parse_keep_alive, template
from phantomex.devtools.llm_sim.server import SimServer
from phantomex.devtools.llm_sim.state import SimModel

MODELS = ["llama3.2:latest", "qwen2.5:7b", "deepseek-r1:latest"]
PROMPT_BUY = (
    "Goal: grow the wallet.\n"
    "BTC price=27000.5 change_24h=-2.31%\n"
    "ETH price=1600.25 change_24h=+0.40%\n"
)
PROMPT_SELL = (
    "BTC price=27000.5 change_24h=+0.10%\nETH price=1650 change_24h=+2.60%\nHOLDING ETH qty=2\n"
)
PROMPT_HOLD = "BTC price=27000.5 change_24h=-0.20%\nETH price=1650 change_24h=+0.30%\n"
PORTFOLIO_TOOL = {
    "type": "function",
    "function": {
        "name": "get_portfolio",
        "description": "The agent's cash and positions",
        "parameters": {"type": "object", "properties": {}},
    },
}
DEFAULTS: dict[str, Any] = {
    "latency_seconds": 0.0,
    "load_seconds": 0.0,
    "max_parallel": 1,
    "max_loaded": None,
    "use_tools": True,
    "reasoning_field": "reasoning",
    "api_key": None,
}


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[SimServer]:
    with SimServer(models=MODELS) as sim:
        yield sim


@pytest.fixture
def sim(shared_sim: SimServer) -> Iterator[SimServer]:
    shared_sim.reset()
    shared_sim.configure(**DEFAULTS)
    yield shared_sim


@pytest.fixture
def http(sim: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10) as client:
        yield client


def ollama_chat(http: httpx.Client, model: str, content: str, **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}], "stream": False}
    return http.post("/api/chat", json={**body, **extra})


def openai_chat(http: httpx.Client, model: str, content: str, **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    return http.post("/v1/chat/completions", json={**body, **extra})


# -- documented shapes ---------------------------------------------------------------------------
def test_listings_have_the_documented_shapes(sim: SimServer, http: httpx.Client) -> None:
    assert http.get("/").text == "Ollama is running"
    assert "version" in http.get("/api/version").json()
    tags = http.get("/api/tags").json()
    assert [m["name"] for m in tags["models"]] == MODELS
    doc = template("ollama_tags.json")["models"][0]
    for m in tags["models"]:
        assert list(m) == list(doc)
        assert list(m["details"]) == list(doc["details"])
        assert isinstance(m["size"], int) and m["size"] > 0
    assert http.get("/api/ps").json() == {"models": []}
    models = http.get("/v1/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == MODELS
    assert list(models["data"][0]) == list(template("openai_models.json")["data"][0])


def test_ollama_chat_has_the_documented_shape(sim: SimServer, http: httpx.Client) -> None:
    resp = ollama_chat(http, "llama3.2", PROMPT_BUY, format={"type": "object"})
    assert resp.status_code == 200
    body = resp.json()
    assert list(body) == list(template("ollama_chat.json"))
    assert body["model"] == "llama3.2"  # echoed as sent; resolved to llama3.2:latest
    assert body["created_at"].endswith("Z")
    assert body["done"] is True and body["done_reason"] == "stop"
    assert body["message"]["role"] == "assistant"
    for key in ("total_duration", "load_duration", "prompt_eval_count", "eval_count"):
        assert isinstance(body[key], int)
    assert json.loads(body["message"]["content"])["action"] == "buy"


def test_openai_chat_has_the_documented_shape(sim: SimServer, http: httpx.Client) -> None:
    resp = openai_chat(http, "qwen2.5:7b", PROMPT_BUY, response_format={"type": "json_object"})
    assert resp.status_code == 200
    body = resp.json()
    assert list(body) == list(template("openai_chat_completion.json"))
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["refusal"] is None
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert json.loads(choice["message"]["content"])["symbol"] == "BTC"


def test_unknown_model_gets_the_documented_404_bodies(sim: SimServer, http: httpx.Client) -> None:
    resp = ollama_chat(http, "nope", "hi")
    assert resp.status_code == 404
    assert resp.json() == {"error": "model 'nope' not found"}
    resp = openai_chat(http, "nope", "hi")
    assert resp.status_code == 404
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == "model_not_found" and "nope" in err["message"]


def test_unsupported_format_is_a_400_about_response_format(shared_sim: SimServer) -> None:
    models = [SimModel("jsononly", supports=("json_object", "prompt"))]
    with SimServer(models=models) as sim, httpx.Client(base_url=sim.url) as http:
        resp = ollama_chat(http, "jsononly", "x", format={"type": "object"})
        assert resp.status_code == 400 and "response_format" in resp.json()["error"]
        assert ollama_chat(http, "jsononly", "x", format="json").status_code == 200
        schema_rf = {"type": "json_schema", "json_schema": {"name": "d", "schema": {}}}
        resp = openai_chat(http, "jsononly", "x", response_format=schema_rf)
        assert resp.status_code == 400
        assert resp.json()["error"]["param"] == "response_format"
        assert openai_chat(http, "jsononly", "x").status_code == 200


# -- the default "model" -------------------------------------------------------------------------
def test_default_model_buys_the_biggest_loser(sim: SimServer, http: httpx.Client) -> None:
    prompt = PROMPT_BUY + "SOL price=20 change_24h=-4.5%\n"
    decision = json.loads(
        ollama_chat(http, "qwen2.5:7b", prompt, format="json").json()["message"]["content"]
    )
    assert decision["action"] == "buy" and decision["symbol"] == "SOL"
    assert decision["quantity"] is None and decision["notional"] is None
    assert 0 < decision["confidence"] <= 1 and "SOL" in decision["reasoning"]


def test_default_model_sells_a_winning_holding_and_else_holds(
    sim: SimServer, http: httpx.Client
) -> None:
    body = openai_chat(http, "llama3.2", PROMPT_SELL, response_format={"type": "json_object"})
    decision = json.loads(body.json()["choices"][0]["message"]["content"])
    assert (decision["action"], decision["symbol"]) == ("sell", "ETH")
    # the same move without the holding is no sale
    no_holding = PROMPT_SELL.replace("HOLDING ETH qty=2\n", "")
    body = openai_chat(http, "llama3.2", no_holding, response_format={"type": "json_object"})
    assert json.loads(body.json()["choices"][0]["message"]["content"])["action"] == "hold"
    body = openai_chat(http, "llama3.2", PROMPT_HOLD, response_format={"type": "json_object"})
    decision = json.loads(body.json()["choices"][0]["message"]["content"])
    assert decision["action"] == "hold" and decision["symbol"] is None


def test_models_have_different_thresholds() -> None:
    names = [f"model-{i}" for i in range(30)]
    buys = {behaviour.thresholds(n)[0] for n in names}
    assert len(buys) > 1
    assert all(-2.0 <= b <= -0.75 for b in buys)
    eager = next(n for n in names if behaviour.thresholds(n)[0] > -1.2)
    shy = next(n for n in names if behaviour.thresholds(n)[0] < -1.3)
    view = behaviour.parse_market("XRP price=0.5 change_24h=-1.25%")
    assert behaviour.decide(eager, view)["action"] == "buy"
    assert behaviour.decide(shy, view)["action"] == "hold"


def test_parsing_is_lenient() -> None:
    text = (
        "- BTC: price=$27,000.50, change_24h=-2.31 %\n"
        "symbol=ETH volume=1 price: 1600 change_24h: 1.5\n"
        "HOLDING ETH qty=2.5\n"
        'Data: {"markets": [{"symbol": "SOL", "price": "20.1", "change_24h": "-3.2%"}],'
        ' "holdings": [{"symbol": "DOGE", "quantity": 10}]}\n'
        "nothing to see here\n"
        "DECISION 2024-01-01T11:00:00+00:00 buy SOL qty=0.1 price=26900 status=executed\n"
        "XRP qty=3 price=0.5 change_24h=n/a\n"
    )
    view = behaviour.parse_market(text)
    assert view.quotes["BTC"].price == 27000.5 and view.quotes["BTC"].change_24h == -2.31
    assert view.quotes["ETH"].change_24h == 1.5
    assert view.quotes["SOL"].change_24h == -3.2
    assert view.quotes["XRP"].change_24h is None and "qty" not in view.quotes
    assert view.holdings == {"ETH": 2.5, "DOGE": 10.0}
    assert behaviour.decide("any", view, (-1.0, 1.0))["symbol"] == "SOL"
    assert behaviour.decide("any", behaviour.parse_market("hello"))["action"] == "hold"


def test_prompt_mode_fences_and_thinking_models_think(sim: SimServer, http: httpx.Client) -> None:
    content = ollama_chat(http, "llama3.2", PROMPT_BUY).json()["message"]["content"]
    assert "```json" in content
    content = ollama_chat(http, "deepseek-r1", PROMPT_BUY).json()["message"]
    assert content["content"].startswith("<think>") and "</think>" in content["content"]
    msg = ollama_chat(http, "deepseek-r1", PROMPT_BUY, think=True, format="json").json()["message"]
    assert msg["thinking"] and json.loads(msg["content"])["action"] == "buy"
    body = openai_chat(http, "deepseek-r1", PROMPT_BUY).json()
    assert body["choices"][0]["message"]["reasoning"]


def test_num_predict_truncates_with_length(sim: SimServer, http: httpx.Client) -> None:
    body = ollama_chat(http, "llama3.2", PROMPT_BUY, format="json", options={"num_predict": 3})
    assert body.json()["done_reason"] == "length"
    assert len(body.json()["message"]["content"]) == 12
    body = openai_chat(http, "llama3.2", PROMPT_BUY, max_tokens=2)
    assert body.json()["choices"][0]["finish_reason"] == "length"


def test_portfolio_tool_is_called_first_when_offered(sim: SimServer, http: httpx.Client) -> None:
    body = ollama_chat(
        http, "llama3.2", PROMPT_SELL.replace("HOLDING ETH qty=2\n", ""), tools=[PORTFOLIO_TOOL]
    )
    msg = body.json()["message"]
    assert msg["content"] == ""
    assert msg["tool_calls"] == [{"function": {"name": "get_portfolio", "arguments": {}}}]
    # the tool result carries the holding; the answer uses it
    messages = [
        {"role": "user", "content": PROMPT_SELL.replace("HOLDING ETH qty=2\n", "")},
        msg,
        {"role": "tool", "content": '{"cash": 100, "positions": [{"symbol": "ETH", "qty": 2}]}'},
    ]
    body = http.post(
        "/api/chat",
        json={
            "model": "llama3.2",
            "messages": messages,
            "tools": [PORTFOLIO_TOOL],
            "format": "json",
        },
    )
    assert json.loads(body.json()["message"]["content"])["action"] == "sell"
    body = openai_chat(http, "llama3.2", PROMPT_BUY, tools=[PORTFOLIO_TOOL]).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["function"] == {
        "name": "get_portfolio",
        "arguments": "{}",
    }
    assert call["id"].startswith("call_")
    sim.configure(use_tools=False)
    body = openai_chat(http, "llama3.2", PROMPT_BUY, tools=[PORTFOLIO_TOOL]).json()
    assert "tool_calls" not in body["choices"][0]["message"]


# -- model accounting ----------------------------------------------------------------------------
def test_loading_costs_time_once_and_keep_alive_zero_unloads(
    sim: SimServer, http: httpx.Client
) -> None:
    sim.configure(load_seconds=0.2)
    t0 = time.perf_counter()
    first = ollama_chat(http, "llama3.2", "hi").json()
    assert time.perf_counter() - t0 >= 0.2
    assert first["load_duration"] >= 0.2e9
    second = ollama_chat(http, "llama3.2", "hi").json()
    assert second["load_duration"] == 0  # loaded already
    ps = http.get("/api/ps").json()["models"]
    assert [m["name"] for m in ps] == ["llama3.2:latest"]
    assert list(ps[0]) == list(template("ollama_ps.json")["models"][0])
    assert ps[0]["expires_at"][:4].isdigit() and ps[0]["size_vram"] > 0
    ollama_chat(http, "qwen2.5:7b", "hi", keep_alive=0)
    stats = sim.stats()
    assert stats["loads"] == {"llama3.2:latest": 1, "qwen2.5:7b": 1}
    assert stats["unloads"] == {"qwen2.5:7b": 1}
    assert stats["loaded"] == ["llama3.2:latest"]
    assert stats["requests"] == 3 and stats["requests_by_model"]["llama3.2:latest"] == 2


def test_generate_loads_and_unloads_as_documented(sim: SimServer, http: httpx.Client) -> None:
    resp = http.post("/api/generate", json={"model": "qwen2.5:7b"}).json()
    assert resp["done_reason"] == "load" and resp["response"] == ""
    assert sim.stats()["loaded"] == ["qwen2.5:7b"]
    resp = http.post("/api/generate", json={"model": "qwen2.5:7b", "keep_alive": 0}).json()
    assert resp["done_reason"] == "unload"
    assert sim.stats()["loaded"] == [] and sim.stats()["unloads"] == {"qwen2.5:7b": 1}
    resp = http.post("/api/chat", json={"model": "llama3.2", "messages": []}).json()
    assert resp["done_reason"] == "load"
    resp = http.post(
        "/api/generate", json={"model": "llama3.2", "prompt": PROMPT_BUY, "format": "json"}
    )
    assert json.loads(resp.json()["response"])["action"] == "buy"


def test_keep_alive_expiry_and_max_loaded_eviction(sim: SimServer, http: httpx.Client) -> None:
    ollama_chat(http, "llama3.2", "hi", keep_alive="1s")
    forever = ollama_chat(http, "qwen2.5:7b", "hi", keep_alive=-1)
    assert forever.status_code == 200
    ps = {m["name"]: m["expires_at"] for m in http.get("/api/ps").json()["models"]}
    assert ps["qwen2.5:7b"] > ps["llama3.2:latest"]
    sim.configure(max_loaded=1)
    ollama_chat(http, "deepseek-r1", "hi")
    stats = sim.stats()
    assert stats["loaded"] == ["deepseek-r1:latest"]
    assert sum(stats["evictions"].values()) == 2
    assert parse_keep_alive("5m") == 300 and parse_keep_alive("1h30m") == 5400
    assert parse_keep_alive(0) == 0 and parse_keep_alive("0") == 0
    assert parse_keep_alive(-1) == float("inf") and parse_keep_alive("-1m") == float("inf")
    assert parse_keep_alive("junk") == 300 and parse_keep_alive(None) == 300


async def _gather_chats(url: str, n: int, model: str = "llama3.2") -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        return list(await asyncio.gather(*(client.post("/api/chat", json=body) for _ in range(n))))


def test_max_parallel_queues_requests(sim: SimServer) -> None:
    sim.configure(latency_seconds=0.15, max_parallel=1)
    t0 = time.perf_counter()
    replies = asyncio.run(_gather_chats(sim.url, 3))
    elapsed = time.perf_counter() - t0
    assert all(r.status_code == 200 for r in replies)
    stats = sim.stats()
    assert stats["max_concurrent"] == 1 and stats["max_in_flight"] == 3
    assert elapsed >= 0.45
    sim.reset()
    sim.configure(latency_seconds=2.0, max_parallel=0)  # no limit: the three overlap
    asyncio.run(_gather_chats(sim.url, 3))
    assert sim.stats()["max_concurrent"] == 3


def test_a_client_that_gives_up_frees_its_slot(sim: SimServer, http: httpx.Client) -> None:
    sim.script("llama3.2", [{"delay": 60}])
    with pytest.raises(httpx.ReadTimeout):
        ollama_chat(httpx.Client(base_url=sim.url, timeout=0.2), "llama3.2", "hi")
    t0 = time.perf_counter()
    assert ollama_chat(http, "llama3.2", "hi").status_code == 200
    assert time.perf_counter() - t0 < 30  # not queued behind the abandoned 60 s answer
    deadline = time.monotonic() + 30
    while sim.stats()["cancelled"] != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sim.stats()["cancelled"] == 1 and sim.stats()["running"] == 0


# -- scripted misbehaviour -----------------------------------------------------------------------
def test_scripts_play_in_order_then_the_default_resumes(sim: SimServer, http: httpx.Client) -> None:
    sim.script(
        "llama3.2",
        [
            'Sure! ```json\n{"action": "hold"}\n```',
            {"status": 429, "headers": {"retry-after": "3"}},
            {"status": 500, "body": {"error": "boom"}},
            {"delay": 0.2},
            {"content": "<think>hm</think>{", "finish_reason": "length"},
            {"status": 400, "body": "plain text"},
        ],
    )
    assert sim.stats()["scripts_pending"] == {"llama3.2:latest": 6}
    assert ollama_chat(http, "llama3.2", "x").json()["message"]["content"].startswith("Sure!")
    r = ollama_chat(http, "llama3.2", "x")
    assert r.status_code == 429 and r.headers["retry-after"] == "3" and "error" in r.json()
    r = ollama_chat(http, "llama3.2", "x")
    assert (r.status_code, r.json()) == (500, {"error": "boom"})
    t0 = time.perf_counter()
    r = ollama_chat(http, "llama3.2", "x")
    assert time.perf_counter() - t0 >= 0.2
    assert (
        r.json()["done_reason"] == "length"
        and r.json()["message"]["content"] == "<think>hm</think>{"
    )
    r = ollama_chat(http, "llama3.2", "x")
    assert (r.status_code, r.text) == (400, "plain text")
    assert ollama_chat(http, "llama3.2", PROMPT_BUY, format="json").status_code == 200
    assert sim.stats()["errors"] == 3


def test_openai_scripted_errors_refusal_and_tool_calls(sim: SimServer, http: httpx.Client) -> None:
    sim.script(
        "qwen2.5:7b",
        [
            {"status": 429},
            {"refusal": "I can't help with that."},
            {"tool_calls": [{"name": "f", "arguments": "{not json"}]},
            {"finish_reason": "length", "content": '{"'},
        ],
    )
    err = openai_chat(http, "qwen2.5:7b", "x")
    assert err.status_code == 429 and err.json()["error"]["code"] == "rate_limit_exceeded"
    msg = openai_chat(http, "qwen2.5:7b", "x").json()["choices"][0]["message"]
    assert msg["content"] is None and msg["refusal"] == "I can't help with that."
    choice = openai_chat(http, "qwen2.5:7b", "x").json()["choices"][0]
    assert choice["message"]["tool_calls"][0]["function"]["arguments"] == "{not json"
    choice = openai_chat(http, "qwen2.5:7b", "x").json()["choices"][0]
    assert choice["finish_reason"] == "length" and choice["message"]["content"] == '{"'


def test_disconnect_closes_without_a_response(sim: SimServer, http: httpx.Client) -> None:
    sim.script("llama3.2", [{"disconnect": True}])
    with pytest.raises(httpx.RemoteProtocolError):
        ollama_chat(http, "llama3.2", "x")
    assert ollama_chat(http, "llama3.2", "x").status_code == 200
    assert sim.stats()["cancelled"] == 0


def test_control_endpoints(sim: SimServer, http: httpx.Client) -> None:
    r = http.post("/sim/script", params={"model": "llama3.2"}, json=["a", "b"])
    assert r.json()["pending"] == {"llama3.2:latest": 2}
    assert http.post("/sim/script", json={"model": "nope", "items": []}).status_code == 404
    assert http.post("/sim/config", json={"bogus": 1}).status_code == 400
    assert (
        http.post("/sim/config", json={"latency_seconds": 0.01}).json()["latency_seconds"] == 0.01
    )
    ollama_chat(http, "llama3.2", "x")
    assert sim.last_request("/api/chat")["messages"][0]["content"] == "x"
    stats = http.post("/sim/reset").json()
    assert stats["requests"] == 0 and stats["scripts_pending"] == {} and stats["loaded"] == []
    assert sim.requests() == []


def test_openai_api_key_is_checked_when_configured(sim: SimServer, http: httpx.Client) -> None:
    sim.configure(api_key="right")
    r = openai_chat(http, "llama3.2", "x")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = http.post(
        "/v1/chat/completions",
        json={"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": "Bearer right"},
    )
    assert r.status_code == 200
    assert sim.requests("/v1/chat/completions")[-1]["has_auth"] is True


# -- running it ----------------------------------------------------------------------------------
def test_cli_command_registers_and_module_runs(tmp_path: Any) -> None:
    from phantomex.cli.llm import register

    app = typer.Typer()
    register(app)

    @app.command()
    def other() -> None:  # a second command so that llm-sim is a subcommand
        pass

    result = CliRunner().invoke(app, ["llm-sim", "--help"])
    assert result.exit_code == 0 and "--load-seconds" in result.output

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "phantomex.devtools.llm_sim",
            "--port",
            str(port),
            "--models",
            "m1,m2:7b",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                tags = httpx.get(f"http://127.0.0.1:{port}/api/tags", timeout=1).json()
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert [m["name"] for m in tags["models"]] == ["m1:latest", "m2:7b"]
    finally:
        proc.terminate()
        proc.wait(10)
