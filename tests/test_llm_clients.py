"""The Ollama and OpenAI client adapters against the simulator over loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_asyncio
from conftest import free_port
from pydantic import SecretStr

from phantomex.brains.llm import clients
from phantomex.brains.llm.client_base import LLMClient, decode_arguments
from phantomex.brains.llm.clients import (
    chat_structured,
    context_overflow,
    format_rejected,
    make_client,
    overflow_limit,
)
from phantomex.brains.llm.forms import FORMS, Failure, Form, classify
from phantomex.brains.llm.ollama_client import OllamaClient
from phantomex.brains.llm.openai_client import OpenAIClient
from phantomex.brains.llm.types import (
    ChatOptions,
    EndpointConfig,
    LLMError,
    StructuredMode,
)
from phantomex.devtools.llm_sim import behaviour
from phantomex.devtools.llm_sim.server import SimServer
from phantomex.devtools.llm_sim.state import SimModel

KEY = "sk-test-SECRET-0123456789abcdefXYZ"
PROMPT = "BTC price=27000.5 change_24h=-2.31%\nETH price=1650 change_24h=+0.30%\n"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"action": {"type": "string", "enum": ["buy", "sell", "hold"]}},
    "required": ["action"],
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_portfolio",
            "description": "The agent's cash and positions",
            "parameters": {"type": "object", "properties": {}},
        },
    }
]
MODELS: list[SimModel] = [
    SimModel("llama3.2:latest"),
    SimModel("deepseek-r1:latest"),
    SimModel("jsononly", supports=("json_object", "prompt")),
    SimModel("promptonly", supports=("prompt",)),
    SimModel(
        "llamacpp",
        supports=("json_object+schema", "json_object", "prompt"),
        flavour="llama-cpp-python",
        context_window=256,
    ),
    SimModel("vllm-old", supports=("guided_json", "json_object", "prompt")),
    SimModel("small", context_window=256),
]
KINDS = ["ollama", "openai"]
CHAT_PATH = {"ollama": "/api/chat", "openai": "/v1/chat/completions"}
USER = [{"role": "user", "content": PROMPT}]


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[SimServer]:
    with SimServer(models=MODELS) as sim:
        yield sim


@pytest.fixture
def sim(shared_sim: SimServer) -> Iterator[SimServer]:
    shared_sim.reset()
    shared_sim.configure(
        latency_seconds=0.0,
        load_seconds=0.0,
        max_parallel=1,
        max_loaded=None,
        use_tools=False,
        reasoning_field="reasoning",
        api_key=None,
    )
    yield shared_sim


def endpoint(sim: SimServer, kind: str, **extra: Any) -> EndpointConfig:
    url = sim.url if kind == "ollama" else sim.openai_url
    fields: dict[str, Any] = {
        "name": f"sim-{kind}",
        "kind": kind,
        "base_url": url,
        "api_key": SecretStr(KEY),
        "timeout_seconds": 5,
    }
    return EndpointConfig(**{**fields, **extra})


@pytest_asyncio.fixture(params=KINDS)
async def client(request: pytest.FixtureRequest, sim: SimServer) -> Any:
    c = make_client(endpoint(sim, request.param))
    yield c
    await c.aclose()


def sent(sim: SimServer, client: LLMClient) -> dict[str, Any]:
    return sim.last_request(CHAT_PATH[client.kind])


def assert_no_key(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), *map(str, exc.args)):
        assert KEY not in text
        assert KEY[:12] not in text and KEY[-8:] not in text


# -- chat and structured modes -------------------------------------------------------------------
def test_make_client_picks_the_adapter(sim: SimServer) -> None:
    assert isinstance(make_client(endpoint(sim, "ollama")), OllamaClient)
    c = make_client(endpoint(sim, "openai"))
    assert isinstance(c, OpenAIClient) and KEY not in repr(c)


@pytest.mark.asyncio
async def test_schema_mode_sends_the_schema(sim: SimServer, client: LLMClient) -> None:
    result = await client.chat("llama3.2", USER, schema=SCHEMA)
    assert result.mode is StructuredMode.SCHEMA
    assert json.loads(result.content)["action"] == "buy"
    body = sent(sim, client)
    if client.kind == "ollama":
        assert body["format"] == SCHEMA
    else:
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "decision", "schema": SCHEMA, "strict": False},
        }
    assert body["stream"] is True, "streamed, so a call dropped at its deadline stops the model"
    assert result.latency_seconds > 0 and result.finish_reason == "stop"
    assert result.raw["model"] == "llama3.2"


@pytest.mark.asyncio
async def test_json_mode(sim: SimServer, client: LLMClient) -> None:
    result = await client.chat("llama3.2", USER, schema=SCHEMA, mode=StructuredMode.JSON)
    assert result.mode is StructuredMode.JSON
    assert json.loads(result.content)["symbol"] == "BTC"
    body = sent(sim, client)
    if client.kind == "ollama":
        assert body["format"] == "json"
    else:
        assert body["response_format"] == {"type": "json_object"}


@pytest.mark.asyncio
async def test_prompt_mode_sends_no_format(sim: SimServer, client: LLMClient) -> None:
    result = await client.chat("llama3.2", USER)
    assert result.mode is StructuredMode.PROMPT and "```json" in result.content
    body = sent(sim, client)
    assert "format" not in body and "response_format" not in body
    with pytest.raises(ValueError):
        await client.chat("llama3.2", USER, mode=StructuredMode.SCHEMA)


@pytest.mark.asyncio
async def test_options_are_mapped(sim: SimServer, client: LLMClient) -> None:
    opts = ChatOptions(temperature=0.2, seed=7, max_tokens=300, keep_alive="10m")
    await client.chat("llama3.2", USER, options=opts)
    body = sent(sim, client)
    if client.kind == "ollama":
        assert body["options"] == {"temperature": 0.2, "seed": 7, "num_predict": 300}
        assert body["keep_alive"] == "10m"
    else:
        assert (body["temperature"], body["seed"], body["max_tokens"]) == (0.2, 7, 300)
        assert "keep_alive" not in body


@pytest.mark.asyncio
async def test_usage_is_read(sim: SimServer, client: LLMClient) -> None:
    result = await client.chat("llama3.2", USER, schema=SCHEMA)
    if client.kind == "ollama":
        assert result.tokens_in == result.raw["prompt_eval_count"]
        assert result.tokens_out == result.raw["eval_count"]
        assert result.load_seconds is not None
    else:
        usage = result.raw["usage"]
        assert (result.tokens_in, result.tokens_out) == (
            usage["prompt_tokens"],
            usage["completion_tokens"],
        )
    assert result.tokens_in and result.tokens_out


# -- tools ---------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_tool_round_trip(sim: SimServer, client: LLMClient) -> None:
    sim.configure(use_tools=True)
    first = await client.chat("llama3.2", USER, tools=TOOLS, mode=StructuredMode.JSON)
    assert [c.name for c in first.tool_calls] == ["get_portfolio"]
    call = first.tool_calls[0]
    assert call.arguments == {} and call.arguments_error is None
    assert sent(sim, client)["tools"] == TOOLS
    if client.kind == "openai":
        assert call.id and call.id.startswith("call_")
        assert first.finish_reason == "tool_calls" and first.content == ""
    messages = [
        *USER,
        client.assistant_message(first),
        client.tool_message(call, json.dumps({"cash": 10, "positions": []})),
    ]
    second = await client.chat("llama3.2", messages, tools=TOOLS, mode=StructuredMode.JSON)
    assert not second.tool_calls and json.loads(second.content)["action"] == "buy"
    echoed = sent(sim, client)["messages"]
    assert echoed[2]["role"] == "tool"
    if client.kind == "openai":
        assert echoed[1]["tool_calls"][0]["function"]["arguments"] == "{}"
        assert echoed[2]["tool_call_id"] == call.id
    else:
        assert echoed[1]["tool_calls"][0]["function"]["arguments"] == {}
        assert echoed[2]["tool_name"] == "get_portfolio"


@pytest.mark.asyncio
async def test_tool_call_arguments_are_decoded(sim: SimServer, client: LLMClient) -> None:
    sim.script(
        "llama3.2",
        [
            {
                "tool_calls": [
                    {"name": "get_price", "arguments": {"symbol": "BTC"}, "id": "call_1"},
                    {"name": "get_stock_price", "arguments": {"ticker": "AAPL", "n": 2}},
                ]
            }
        ],
    )
    result = await client.chat("llama3.2", USER, tools=TOOLS)
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("get_price", {"symbol": "BTC"}),
        ("get_stock_price", {"ticker": "AAPL", "n": 2}),
    ]
    if client.kind == "ollama":  # Ollama sends objects ...
        assert isinstance(result.raw["message"]["tool_calls"][0]["function"]["arguments"], dict)
    else:  # ... OpenAI JSON strings
        args = result.raw["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        assert args == '{"symbol": "BTC"}' and result.tool_calls[0].id == "call_1"


@pytest.mark.asyncio
async def test_bad_openai_arguments_become_arguments_error(sim: SimServer) -> None:
    sim.script(
        "llama3.2",
        [
            {
                "tool_calls": [
                    {"name": "a", "arguments": "{not json"},
                    {"name": "b", "arguments": "[1, 2]"},
                    {"name": "c", "arguments": '{\n"location": "Boston, MA"\n}'},
                    {"name": "d", "arguments": ""},
                ]
            }
        ],
    )
    async with make_client(endpoint(sim, "openai")) as c:
        result = await c.chat("llama3.2", USER, tools=TOOLS)
    a, b, cc, d = result.tool_calls
    assert a.arguments == {} and a.arguments_error and "not valid JSON" in a.arguments_error
    assert b.arguments == {} and b.arguments_error and "not a JSON object" in b.arguments_error
    assert cc.arguments == {"location": "Boston, MA"} and cc.arguments_error is None
    assert d.arguments == {} and d.arguments_error is None
    assert decode_arguments({"x": 1}) == ({"x": 1}, None)


# -- reasoning, refusal, truncation --------------------------------------------------------------
@pytest.mark.asyncio
async def test_thinking_is_read(sim: SimServer, client: LLMClient) -> None:
    sim.script("llama3.2", [{"content": '{"action": "hold"}', "thinking": "Let me see."}])
    result = await client.chat("llama3.2", USER, schema=SCHEMA)
    assert result.thinking == "Let me see."
    assert json.loads(result.content) == {"action": "hold"}


@pytest.mark.asyncio
async def test_openai_reasoning_content_field(sim: SimServer) -> None:
    sim.configure(reasoning_field="reasoning_content")
    async with make_client(endpoint(sim, "openai")) as c:
        result = await c.chat("deepseek-r1", USER, schema=SCHEMA)
    assert result.thinking and "buy" in result.thinking
    assert json.loads(result.content)["action"] == "buy"


@pytest.mark.asyncio
async def test_openai_refusal(sim: SimServer) -> None:
    sim.script("llama3.2", [{"refusal": "I'm very sorry, but I can't assist with that."}])
    async with make_client(endpoint(sim, "openai")) as c:
        result = await c.chat("llama3.2", USER, schema=SCHEMA)
    assert result.content == "" and result.refusal is not None and "sorry" in result.refusal


@pytest.mark.asyncio
async def test_finish_reason_length(sim: SimServer, client: LLMClient) -> None:
    sim.script("llama3.2", [{"finish_reason": "length", "content": '{"'}])
    result = await client.chat("llama3.2", USER, schema=SCHEMA)
    assert (result.finish_reason, result.content) == ("length", '{"')


# -- errors --------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_429_is_rate_limit_and_500_is_http(sim: SimServer, client: LLMClient) -> None:
    sim.script("llama3.2", [{"status": 429}, {"status": 500}, {"status": 503, "body": "<html>"}])
    with pytest.raises(LLMError) as exc:
        await client.chat("llama3.2", USER, schema=SCHEMA)
    assert (exc.value.kind, exc.value.status) == ("rate_limit", 429)
    with pytest.raises(LLMError) as exc:
        await client.chat("llama3.2", USER, schema=SCHEMA)
    assert (exc.value.kind, exc.value.status) == ("http", 500)
    assert "sim-" in str(exc.value) and "500" in str(exc.value)
    with pytest.raises(LLMError) as exc:
        await client.chat("llama3.2", USER, schema=SCHEMA)
    assert (exc.value.kind, exc.value.status) == ("http", 503)
    assert sim.stats()["requests"] == 3  # no retries


@pytest.mark.asyncio
async def test_unknown_model_is_http_404(sim: SimServer, client: LLMClient) -> None:
    with pytest.raises(LLMError) as exc:
        await client.chat("nope", USER)
    assert (exc.value.kind, exc.value.status) == ("http", 404)
    assert "nope" in str(exc.value)


@pytest.mark.asyncio
async def test_slow_reply_times_out(sim: SimServer, client: LLMClient) -> None:
    sim.script("llama3.2", [{"delay": 60}])
    t0 = time.perf_counter()
    with pytest.raises(LLMError) as exc:
        await client.chat("llama3.2", USER, options=ChatOptions(timeout_seconds=0.3))
    assert exc.value.kind == "timeout"
    assert time.perf_counter() - t0 < 30  # gave up at its timeout, long before the answer
    assert "0.3" in str(exc.value)


@pytest.mark.asyncio
async def test_refused_connection(sim: SimServer) -> None:
    for kind in KINDS:
        ep = endpoint(sim, kind, base_url=f"http://127.0.0.1:{free_port()}")
        async with make_client(ep) as c:
            with pytest.raises(LLMError) as exc:
                await c.chat("llama3.2", USER)
            assert exc.value.kind == "connection" and exc.value.status is None
            assert_no_key(exc.value)
            with pytest.raises(LLMError) as exc:
                await c.list_models()
            assert exc.value.kind == "connection"


@pytest.mark.asyncio
async def test_disconnect(sim: SimServer, client: LLMClient) -> None:
    # a server that keeps dropping the connection (an OpenAI client asks again without
    # streaming after a broken stream, as llama-cpp-python reports errors that way)
    sim.script("llama3.2", [{"disconnect": True}] * 8)
    with pytest.raises(LLMError) as exc:
        await client.chat("llama3.2", USER)
    assert exc.value.kind in ("connection", "bad_response")
    sim.state.scripts.clear()  # the items the client did not ask for
    # the next call works on a fresh connection
    assert (await client.chat("llama3.2", USER, schema=SCHEMA)).content


@pytest.mark.asyncio
async def test_malformed_bodies_are_bad_response(sim: SimServer) -> None:
    sim.script(
        "llama3.2",
        [{"status": 200, "body": "not json"}, {"tool_calls": [{"name": "f", "arguments": "x"}]}],
    )
    async with make_client(endpoint(sim, "ollama")) as c:
        for _ in range(2):
            with pytest.raises(LLMError) as exc:
                await c.chat("llama3.2", USER)
            assert exc.value.kind == "bad_response"
    # no event in the stream, then the same without streaming (see the empty-stream test)
    sim.script("llama3.2", [{"status": 200, "body": {"id": "x", "choices": []}}] * 2)
    async with make_client(endpoint(sim, "openai")) as c:
        with pytest.raises(LLMError) as exc:
            await c.chat("llama3.2", USER)
        assert exc.value.kind == "bad_response"


@pytest.mark.asyncio
async def test_api_key_never_in_errors(sim: SimServer) -> None:
    """The simulator's 401 echoes the whole key it got (worse than OpenAI); errors redact it."""
    sim.configure(api_key="the-right-key")
    sim.script("llama3.2", [{"status": 500, "body": {"error": f"bad key {KEY}"}}])
    errors: list[LLMError] = []
    async with make_client(endpoint(sim, "openai")) as c:
        for call in (lambda: c.chat("llama3.2", USER), c.list_models):
            with pytest.raises(LLMError) as exc:
                await call()
            assert exc.value.status == 401 and "Incorrect API key" in str(exc.value)
            errors.append(exc.value)
    async with make_client(endpoint(sim, "ollama")) as c:
        with pytest.raises(LLMError) as exc:
            await c.chat("llama3.2", USER)
        errors.append(exc.value)
        assert sim.requests("/api/chat")[-1]["has_auth"] is True
    for err in errors:
        assert_no_key(err)
        assert err.__cause__ is None and err.__suppress_context__


# -- mode negotiation ----------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_negotiation_falls_back_and_remembers(sim: SimServer, client: LLMClient) -> None:
    memory: dict[tuple[str, str], Any] = {}
    tried = FORMS[client.kind].index(Form.JSON_OBJECT) + 1
    result = await chat_structured(client, "jsononly", USER, SCHEMA, ChatOptions(), memory)
    assert result.mode is StructuredMode.JSON and json.loads(result.content)["action"] == "buy"
    assert memory == {(client.name, "jsononly"): Form.JSON_OBJECT}
    assert len(sim.requests(CHAT_PATH[client.kind])) == tried
    await chat_structured(client, "jsononly", USER, SCHEMA, ChatOptions(), memory)
    assert len(sim.requests(CHAT_PATH[client.kind])) == tried + 1  # started at JSON
    result = await chat_structured(client, "promptonly", USER, SCHEMA, ChatOptions(), memory)
    assert result.mode is StructuredMode.PROMPT
    assert memory[(client.name, "promptonly")] is Form.PROMPT
    result = await chat_structured(client, "llama3.2", USER, SCHEMA, ChatOptions(), memory)
    assert result.mode is StructuredMode.SCHEMA and result.form == "json_schema"


@pytest.mark.asyncio
async def test_negotiation_does_not_retry_other_errors(sim: SimServer, client: LLMClient) -> None:
    memory: dict[tuple[str, str], Any] = {}
    sim.script("llama3.2", [{"status": 500}])
    with pytest.raises(LLMError) as exc:
        await chat_structured(client, "llama3.2", USER, SCHEMA, ChatOptions(), memory)
    assert exc.value.status == 500 and memory == {}
    assert len(sim.requests(CHAT_PATH[client.kind])) == 1
    assert format_rejected(LLMError("http", "x: response_format unsupported", status=500))
    assert not format_rejected(LLMError("timeout", "format"))


@pytest.mark.asyncio
async def test_negotiation_raises_when_every_mode_is_rejected(sim: SimServer) -> None:
    sim.script("llama3.2", [{"status": 400}] * len(FORMS["openai"]))
    async with make_client(endpoint(sim, "openai")) as c:
        with pytest.raises(LLMError) as exc:
            await chat_structured(c, "llama3.2", USER, SCHEMA)
    assert exc.value.status == 400
    assert len(sim.requests("/v1/chat/completions")) == len(FORMS["openai"])


@pytest.mark.asyncio
async def test_llama_cpp_python_gets_the_schema_in_its_own_form(sim: SimServer) -> None:
    """llama-cpp-python answers ``json_schema`` with HTTP 500 and enforces ``json_object`` +
    ``schema``: the schema is still enforced, not dropped for plain JSON."""
    memory: dict[tuple[str, str], Any] = {}
    async with make_client(endpoint(sim, "openai")) as c:
        result = await chat_structured(c, "llamacpp", USER, SCHEMA, ChatOptions(), memory)
        assert result.mode is StructuredMode.SCHEMA and result.form == "json_object+schema"
        first, second = sim.requests("/v1/chat/completions")
        assert first["body"]["response_format"]["type"] == "json_schema"
        assert second["body"]["response_format"] == {"type": "json_object", "schema": SCHEMA}
        await chat_structured(c, "llamacpp", USER, SCHEMA, ChatOptions(), memory)
    assert len(sim.requests("/v1/chat/completions")) == 3, "the form is remembered"


@pytest.mark.asyncio
async def test_vllm_guided_json_form(sim: SimServer) -> None:
    async with make_client(endpoint(sim, "openai")) as c:
        result = await chat_structured(c, "vllm-old", USER, SCHEMA)
    assert result.mode is StructuredMode.SCHEMA and result.form == "guided_json"
    assert sim.last_request("/v1/chat/completions")["guided_json"] == SCHEMA


@pytest.mark.asyncio
async def test_a_rejected_form_is_remembered_when_the_next_call_fails(sim: SimServer) -> None:
    """A server that rejects ``json_schema`` and then fails is not asked ``json_schema`` again."""
    memory: dict[tuple[str, str], Any] = {}
    sim.script("llamacpp", [{"status": 503}, {"status": 503}])
    async with make_client(endpoint(sim, "openai")) as c:
        for _ in range(2):
            with pytest.raises(LLMError) as exc:
                await chat_structured(c, "llamacpp", USER, SCHEMA, ChatOptions(), memory)
            assert exc.value.status == 503
        result = await chat_structured(c, "llamacpp", USER, SCHEMA, ChatOptions(), memory)
    assert result.form == "json_object+schema"
    forms = [r["body"]["response_format"]["type"] for r in sim.requests("/v1/chat/completions")]
    assert forms == ["json_schema", "json_object", "json_object", "json_object"]
    assert forms.count("json_schema") == 1


@pytest.mark.asyncio
async def test_a_context_overflow_is_not_a_format_rejection(sim: SimServer) -> None:
    """One request, an error that says the prompt must be shorter and the window's size."""
    memory: dict[tuple[str, str], Any] = {}
    long = [{"role": "user", "content": PROMPT * 20}]
    async with make_client(endpoint(sim, "openai")) as c:
        with pytest.raises(LLMError) as exc:
            await chat_structured(c, "small", long, SCHEMA, ChatOptions(max_tokens=50), memory)
    assert exc.value.status == 400 and context_overflow(exc.value)
    assert not format_rejected(exc.value) and overflow_limit(exc.value) == 256
    assert len(sim.requests("/v1/chat/completions")) == 1 and memory == {}


@pytest.mark.asyncio
async def test_an_overflow_in_a_broken_stream_is_heard_without_streaming(sim: SimServer) -> None:
    """llama-cpp-python fails a streamed request after its 200 (the connection drops): the
    call is asked again without streaming, which gives the real error."""
    long = [{"role": "user", "content": PROMPT * 20}]
    async with make_client(endpoint(sim, "openai")) as c:
        with pytest.raises(LLMError) as exc:
            await c.chat("llamacpp", long, options=ChatOptions(max_tokens=50))
    assert context_overflow(exc.value) and overflow_limit(exc.value) == 256
    assert [r["body"].get("stream") for r in sim.requests("/v1/chat/completions")] == [True, None]


@pytest.mark.parametrize(
    ("status", "message", "failure"),
    [
        (500, "1 validation error: ('body', 'response_format', 'type') Input should be 'text' "
         "or 'json_object'", Failure.FORMAT),  # llama-cpp-python
        (400, "This model's maximum context length is 2048 tokens. However, you requested 3081 "
         "tokens", Failure.CONTEXT),  # llama-cpp-python, OpenAI
        (400, "the request exceeds the available context size (4096 tokens), try increasing it",
         Failure.CONTEXT),  # llama-server
        (400, "Invalid parameter: 'response_format' of type 'json_schema' is not supported",
         Failure.FORMAT),
        (400, "Unrecognized request argument supplied: guided_json", Failure.FORMAT),
        (422, "Unprocessable Entity", Failure.FORMAT),
        (404, "model 'x' not found", Failure.OTHER),
        (400, "model 'x' does not exist", Failure.OTHER),
        (500, "The server had an error while processing your request.", Failure.OTHER),
        (503, "Service Unavailable", Failure.OTHER),
    ],
)  # fmt: skip
def test_errors_are_classified(status: int, message: str, failure: Failure) -> None:
    exc = LLMError(
        "http", f"ep (openai http://h/v1): chat: HTTP {status}: {message}", status=status
    )
    assert classify(exc) is failure
    assert classify(LLMError("timeout", "context length format")) is Failure.OTHER


@pytest.mark.asyncio
async def test_a_call_dropped_at_its_deadline_stops_the_generation(
    sim: SimServer, client: LLMClient
) -> None:
    """The call streams: at the deadline the connection closes and the server stops."""
    sim.script("llama3.2", [{"stream_seconds": 60}])
    started = time.perf_counter()
    with pytest.raises(LLMError) as exc:
        await client.chat("llama3.2", USER, schema=SCHEMA, options=ChatOptions(timeout_seconds=1))
    assert exc.value.kind == "timeout" and time.perf_counter() - started < 30
    deadline = time.monotonic() + 30
    while sim.stats()["cancelled"] < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert sim.stats()["cancelled"] == 1, "the server saw the client go and stopped"


@pytest.mark.asyncio
async def test_tokens_without_usage_in_the_stream(sim: SimServer) -> None:
    """A server that streams no usage (llama-cpp-python): output tokens are the streamed
    pieces, the prompt's from the server's tokenizer."""
    sim.configure(stream_usage=False)
    async with make_client(endpoint(sim, "openai")) as c:
        result = await c.chat("llama3.2", USER, schema=SCHEMA)
    assert result.tokens_out and result.tokens_out > 1
    assert result.tokens_in == behaviour.estimate_tokens(PROMPT)
    assert sim.requests("/extras/tokenize/count")


@pytest.mark.asyncio
async def test_context_window_from_the_server(sim: SimServer, client: LLMClient) -> None:
    """Ollama's /api/show and llama-server's /props say how large the context is."""
    assert await client.context_window("small") == 256
    assert await client.context_window("nope") in (None, 256)  # /props is server-wide


# -- models, loading, concurrency ----------------------------------------------------------------
@pytest.mark.asyncio
async def test_list_models(sim: SimServer, client: LLMClient) -> None:
    models = await client.list_models()
    assert [m.name for m in models] == [m.name for m in MODELS]
    if client.kind == "ollama":
        assert models[0].size_bytes and models[0].details["format"] == "gguf"
    else:
        assert models[0].details["owned_by"] == "library"


@pytest.mark.asyncio
async def test_ollama_load_accounting(sim: SimServer) -> None:
    sim.configure(load_seconds=0.1)
    async with make_client(endpoint(sim, "ollama")) as c:
        assert await c.loaded_models() == []
        first = await c.chat("llama3.2", USER, schema=SCHEMA)
        assert first.load_seconds is not None and first.load_seconds >= 0.1
        second = await c.chat("llama3.2", USER, schema=SCHEMA)
        assert second.load_seconds == 0
        loaded = await c.loaded_models()
        assert [m.name for m in loaded] == ["llama3.2:latest"]
        assert loaded[0].size_vram_bytes and loaded[0].expires_at
        await c.unload("llama3.2")
        assert await c.loaded_models() == []
        unload = sim.last_request("/api/generate")
        assert unload["model"] == "llama3.2" and unload["keep_alive"] == 0
        assert "prompt" not in unload
        await c.chat("deepseek-r1", USER, options=ChatOptions(keep_alive=0))
        assert await c.loaded_models() == []
        await c.load("deepseek-r1", keep_alive="1m")
        assert [m.name for m in await c.loaded_models()] == ["deepseek-r1:latest"]
    stats = sim.stats()
    assert stats["loads"] == {"llama3.2:latest": 1, "deepseek-r1:latest": 2}
    assert stats["unloads"] == {"llama3.2:latest": 1, "deepseek-r1:latest": 1}


@pytest.mark.asyncio
async def test_openai_has_no_loaded_models_and_unload_is_a_no_op(sim: SimServer) -> None:
    async with make_client(endpoint(sim, "openai")) as c:
        await c.chat("llama3.2", USER)
        assert await c.loaded_models() == []
        await c.unload("llama3.2")
        await c.load("llama3.2")
    assert sim.stats()["unloads"] == {} and sim.requests("/api/generate") == []


@pytest.mark.asyncio
async def test_parallel_calls_queue_in_the_sim(sim: SimServer, client: LLMClient) -> None:
    sim.configure(latency_seconds=0.1, max_parallel=1)
    t0 = time.perf_counter()
    results = await asyncio.gather(*(client.chat("llama3.2", USER) for _ in range(3)))
    assert time.perf_counter() - t0 >= 0.3
    stats = sim.stats()
    assert stats["max_in_flight"] == 3 and stats["max_concurrent"] == 1
    assert max(r.latency_seconds for r in results) >= 0.25  # the last one waited in the queue


def test_a_client_survives_event_loop_changes(sim: SimServer) -> None:
    c = make_client(endpoint(sim, "ollama"))

    async def once() -> str:
        return (await c.chat("llama3.2", USER, schema=SCHEMA)).content

    assert asyncio.run(once()) == asyncio.run(once())
    asyncio.run(c.aclose())


# -- connection test -----------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_test_connection(sim: SimServer) -> None:
    ok = await clients.test_connection(endpoint(sim, "openai"))
    assert ok["ok"] is True and ok["models"] == len(MODELS) and ok["latency_seconds"] >= 0
    ok = await clients.test_connection(endpoint(sim, "ollama"))
    assert ok["ok"] is True and "llama3.2:latest" in ok["model_names"]
    bad = await clients.test_connection(
        endpoint(sim, "ollama", base_url=f"http://127.0.0.1:{free_port()}")
    )
    assert bad["ok"] is False and bad["error_kind"] == "connection" and KEY not in bad["error"]
