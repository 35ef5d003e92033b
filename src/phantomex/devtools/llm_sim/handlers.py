"""The request handlers: one chat pipeline for both APIs over a shared state."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from phantomex.devtools.llm_sim import behaviour
from phantomex.devtools.llm_sim.bodies import Reply, ollama_body, openai_body, prompt_tokens
from phantomex.devtools.llm_sim.connection import close_connection, wait_disconnect
from phantomex.devtools.llm_sim.protocol import (
    Api,
    ApiError,
    broken_stream,
    check_context,
    error_body,
    mode_of,
    ollama_error,
    ollama_parts,
    openai_chunks,
    openai_error,
    parse_keep_alive,
    utc_now,
)
from phantomex.devtools.llm_sim.state import (
    SimModel,
    SimState,
    unsupported,
)

PORTFOLIO_TOOL = "get_portfolio"
NEWS_TOOL = "get_news"


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, str | bytes):
        return PlainTextResponse(body, status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


class Handlers:
    """The request handlers over a :class:`SimState`."""

    def __init__(self, state: SimState) -> None:
        self.s = state

    # -- plumbing --------------------------------------------------------------------------------
    def record(self, request: Request, body: Any) -> None:
        self.s.log.append(
            {
                "path": request.url.path,
                "body": body,
                "has_auth": bool(request.headers.get("authorization")),
                "at": time.time(),
            }
        )

    def check_auth(self, api: Api, request: Request) -> None:
        if self.s.api_key is None or api != "openai":
            return
        header = request.headers.get("authorization", "")
        given = header.removeprefix("Bearer ").strip()
        if given != self.s.api_key:
            # Deliberately echoes the whole key (worse than OpenAI, which masks it) so that
            # clients can be tested for redaction.
            raise ApiError(
                401,
                openai_error(
                    f"Incorrect API key provided: {given}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
            )

    async def body(self, api: Api, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(
                400,
                ollama_error("invalid character in request body")
                if api == "ollama"
                else openai_error(
                    "We could not parse the JSON body of your request.", "invalid_request_error"
                ),
            ) from None
        if not isinstance(body, dict):
            raise ApiError(400, error_body(api, 400, "the request body must be a JSON object"))
        self.record(request, body)
        return body

    def error_response(self, api: Api, err: ApiError) -> Response:
        if err.counted:
            self.s.errors += 1
        return _json(err.status, err.body, err.headers)

    async def guarded(self, api: Api, request: Request, work: Any) -> Response:
        """Run ``work`` (a coroutine) unless the client goes away first; map ``ApiError``s."""
        task: asyncio.Task[Response] = asyncio.ensure_future(work)
        watch = asyncio.ensure_future(wait_disconnect(request))
        try:
            await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                if not getattr(request.state, "sim_disconnect", False):
                    self.s.cancelled += 1
        if task.cancelled():
            return Response(status_code=499)
        exc = task.exception()
        if isinstance(exc, ApiError):
            return self.error_response(api, exc)
        return task.result()

    # -- chat ------------------------------------------------------------------------------------
    def model_of(self, api: Api, body: dict[str, Any]) -> SimModel:
        name = body.get("model")
        if not isinstance(name, str) or not name:
            raise ApiError(
                400,
                ollama_error("model is required")
                if api == "ollama"
                else openai_error(
                    "you must provide a model parameter",
                    "invalid_request_error",
                    None,
                    "model",
                ),
            )
        model = self.s.resolve(name)
        if model is None:
            raise ApiError(
                404,
                ollama_error(f"model '{name}' not found")
                if api == "ollama"
                else openai_error(
                    f"The model `{name}` does not exist or you do not have access to it.",
                    "invalid_request_error",
                    "model_not_found",
                ),
            )
        return model

    async def chat(self, api: Api, request: Request, kind: str) -> Response:
        try:
            self.check_auth(api, request)
            body = await self.body(api, request)
            self.s.requests += 1
            self.s.requests_by_path[request.url.path] += 1
            model = self.model_of(api, body)
            self.s.requests_by_model[model.name] += 1
        except ApiError as err:
            return self.error_response(api, err)
        if kind == "generate":
            return await self.guarded(api, request, self.generate(request, body, model))
        return await self.guarded(api, request, self.complete(api, request, body, model))

    async def generate(self, request: Request, body: dict[str, Any], model: SimModel) -> Response:
        prompt = body.get("prompt")
        if not prompt:
            return await self.load_unload(request, body, model, "response")
        messages = []
        if isinstance(body.get("system"), str):
            messages.append({"role": "system", "content": body["system"]})
        messages.append({"role": "user", "content": str(prompt)})
        return await self.complete("ollama", request, {**body, "messages": messages}, model, True)

    async def load_unload(
        self, request: Request, body: dict[str, Any], model: SimModel, field_name: str
    ) -> Response:
        """Ollama's documented load (no messages/prompt) and unload (plus keep_alive 0)."""
        keep_alive = parse_keep_alive(body.get("keep_alive"))
        load_ns = 0
        if keep_alive == 0:
            self.s.unload(model)
            reason = "unload"
        else:
            await self.s.gate.acquire()
            try:
                load_ns = await self.s.ensure_loaded(model, keep_alive)
            finally:
                self.s.gate.release()
            self.s.after_reply(model, keep_alive)
            reason = "load"
        out: dict[str, Any] = {"model": body["model"], "created_at": utc_now()}
        out[field_name] = {"role": "assistant", "content": ""} if field_name == "message" else ""
        out.update(done_reason=reason, done=True)
        if load_ns:
            out["load_duration"] = load_ns
        return JSONResponse(out)

    async def complete(
        self,
        api: Api,
        request: Request,
        body: dict[str, Any],
        model: SimModel,
        as_generate: bool = False,
    ) -> Response:
        messages = body.get("messages")
        if messages is None and api == "ollama":
            messages = []
        if not isinstance(messages, list) or (api == "openai" and not messages):
            raise ApiError(400, error_body(api, 400, "messages must be a non-empty list"))
        if api == "ollama" and not messages:
            return await self.load_unload(request, body, model, "message")
        mode = mode_of(api, body)
        if mode not in model.supports:
            raise unsupported(api, mode, model)
        if api == "openai" and model.context_window is not None:
            try:
                check_context(
                    model.context_window, prompt_tokens(messages), self.max_tokens(api, body)
                )
            except ApiError:
                if body.get("stream") and model.flavour == "llama-cpp-python":
                    return StreamingResponse(broken_stream(), media_type="text/event-stream")
                raise
        keep_alive = parse_keep_alive(body.get("keep_alive"))
        s = self.s
        s.in_flight += 1
        s.max_in_flight = max(s.max_in_flight, s.in_flight)
        try:
            await s.gate.acquire()
            s.running += 1
            s.max_concurrent = max(s.max_concurrent, s.running)
            try:
                started = time.perf_counter()
                item, delay = s.next_item(model.name)
                if delay > 0:
                    await asyncio.sleep(delay)
                if isinstance(item, dict) and item.get("disconnect"):
                    await close_connection(request)
                    return Response(status_code=499)
                if isinstance(item, dict) and "status" in item:
                    status = int(item["status"])
                    payload = item.get("body")
                    raise ApiError(
                        status,
                        error_body(api, status) if payload is None else payload,
                        {str(k): str(v) for k, v in (item.get("headers") or {}).items()},
                    )
                load_ns = await s.ensure_loaded(model, keep_alive)
                latency = (
                    model.latency_seconds
                    if model.latency_seconds is not None
                    else s.latency_seconds
                )
                if latency > 0:
                    await asyncio.sleep(latency)
                reply = self.reply(api, body, model, messages, mode, item)
                reply.load_ns, reply.started = load_ns, started
                s.after_reply(model, keep_alive)
            finally:
                s.running -= 1
                s.gate.release()
        finally:
            s.in_flight -= 1
        stream_seconds = float(item.get("stream_seconds", 0)) if isinstance(item, dict) else 0.0
        if api == "openai":
            full = openai_body(body, messages, reply, self.s.reasoning_field)
            if body.get("stream"):
                return self.stream(api, body, full, stream_seconds)
            return JSONResponse(full)
        out = ollama_body(body, messages, reply)
        if body.get("stream") is True and not as_generate:
            return self.stream(api, body, out, stream_seconds)
        if as_generate:
            msg = out.pop("message")
            out = {
                "model": out.pop("model"),
                "created_at": out.pop("created_at"),
                "response": msg.get("content") or "",
                **({"thinking": msg["thinking"]} if msg.get("thinking") else {}),
                **out,
            }
        return JSONResponse(out)

    # -- streaming -------------------------------------------------------------------------------
    def stream(
        self, api: Api, body: dict[str, Any], full: dict[str, Any], seconds: float
    ) -> Response:
        """``full`` (a complete answer) as the API's stream, taking ``seconds`` to generate."""
        chunks = (
            openai_chunks(body, full, self.s.reasoning_field, self.s.stream_usage)
            if api == "openai"
            else ollama_parts(full)
        )
        pause = seconds / max(1, len(chunks))
        s = self.s

        async def generate() -> Any:
            done = False
            try:
                for chunk in chunks:
                    if pause > 0:
                        await asyncio.sleep(pause)
                    if api == "openai":
                        yield f"data: {json.dumps(chunk)}\n\n"
                    else:
                        yield json.dumps(chunk) + "\n"
                if api == "openai":
                    yield "data: [DONE]\n\n"
                done = True
            finally:
                if not done:  # the client went away: the generation stops here
                    s.cancelled += 1

        media = "text/event-stream" if api == "openai" else "application/x-ndjson"
        return StreamingResponse(generate(), media_type=media)

    # -- the "model" -----------------------------------------------------------------------------
    def reply(
        self,
        api: Api,
        body: dict[str, Any],
        model: SimModel,
        messages: list[Any],
        mode: str,
        item: Any,
    ) -> Reply:
        if isinstance(item, str):
            return Reply(content=item)
        if isinstance(item, dict):
            calls = [
                {
                    "name": str(c.get("name", "")),
                    "arguments": c.get("arguments", {}),
                    "id": c.get("id") or f"call_{secrets.token_hex(6)}",
                }
                for c in item.get("tool_calls") or []
                if isinstance(c, dict)
            ]
            content = item.get("content", None if (calls or "refusal" in item) else "")
            return Reply(
                content=content,
                thinking=item.get("thinking"),
                tool_calls=calls,
                finish_reason=item.get("finish_reason"),
                refusal=item.get("refusal"),
            )
        tools = body.get("tools")
        if self.s.use_tools and behaviour.wants_tool(messages, tools, PORTFOLIO_TOOL):
            names = [PORTFOLIO_TOOL]
            if behaviour.wants_tool(messages, tools, NEWS_TOOL):  # reads the news too, if offered
                names.append(NEWS_TOOL)
            calls = [
                {"name": n, "arguments": {}, "id": f"call_{secrets.token_hex(6)}"} for n in names
            ]
            return Reply(content=None, tool_calls=calls)
        decision = behaviour.default_reply(model.name, messages, model.limits)
        if mode == "prompt":
            text = "Here is my decision:\n```json\n" + json.dumps(decision, indent=2) + "\n```"
        else:
            text = json.dumps(decision)
        thinking = None
        if model.thinking:
            thought = (
                f"The prompt gives {decision.get('action', 'reflection')} signals; my thresholds "
                f"are {model.limits[0]:+.2f}% / {model.limits[1]:+.2f}%. "
                f"{decision.get('reasoning', '')}"
            )
            if api == "openai" or body.get("think"):
                thinking = thought
            elif mode == "prompt":
                text = f"<think>\n{thought}\n</think>\n\n{text}"
        finish = None
        limit = self.max_tokens(api, body)
        if limit is not None and behaviour.estimate_tokens(text) > limit:
            text, finish = text[: max(0, limit * 4)], "length"
        return Reply(content=text, thinking=thinking, finish_reason=finish)

    @staticmethod
    def max_tokens(api: Api, body: dict[str, Any]) -> int | None:
        if api == "ollama":
            options = body.get("options")
            value = options.get("num_predict") if isinstance(options, dict) else None
        else:
            value = body.get("max_completion_tokens", body.get("max_tokens"))
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        return None
