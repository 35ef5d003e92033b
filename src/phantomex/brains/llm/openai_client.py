"""The adapter over the official ``openai`` client library (any OpenAI-compatible server)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import openai
from openai.lib.streaming.chat import ChatCompletionStreamState

from phantomex.brains.llm.client_base import (
    SCHEMA_NAME,
    LLMClient,
    decode_arguments,
    message_text,
    resolve_form,
)
from phantomex.brains.llm.forms import (
    Form,
    openai_request,
)
from phantomex.brains.llm.types import (
    ChatOptions,
    ChatResult,
    EndpointConfig,
    LLMError,
    LoadedModel,
    ModelInfo,
    StructuredMode,
    ToolCall,
)


class OpenAIClient(LLMClient):
    """``openai.AsyncOpenAI``: ``/chat/completions`` and ``/models`` under ``base_url``
    (which usually ends in ``/v1``)."""

    kind = "openai"

    def __init__(self, endpoint: EndpointConfig) -> None:
        super().__init__(endpoint)
        self._tokenizer: str | None = None  # the working tokenize path; "" when there is none

    def _new_lib(self) -> openai.AsyncOpenAI:
        key = self.endpoint.api_key.get_secret_value() if self.endpoint.api_key else "unused"
        return openai.AsyncOpenAI(
            base_url=self.endpoint.base_url,
            api_key=key,
            timeout=self.endpoint.timeout_seconds,
            max_retries=0,
        )

    async def _close_lib(self, lib: Any) -> None:
        await lib.close()

    def _convert(self, exc: Exception) -> LLMError:
        if isinstance(exc, openai.APITimeoutError):
            return LLMError("timeout", "timed out")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            why = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
            return LLMError("connection", f"connection failed{why}")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            kind = "rate_limit" if status == 429 else "http"
            return LLMError(kind, f"HTTP {status}: {_openai_detail(exc)}", status=status)
        return LLMError("bad_response", f"unexpected response ({type(exc).__name__}: {exc})")

    @staticmethod
    def _messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Messages as OpenAI expects them: tool-call arguments as JSON strings."""
        out: list[dict[str, Any]] = []
        for m in messages:
            msg = dict(m)
            if msg.get("tool_calls"):
                calls = []
                for i, c in enumerate(msg["tool_calls"]):
                    fn = dict(c.get("function") or {})
                    if not isinstance(fn.get("arguments"), str):
                        fn["arguments"] = json.dumps(fn.get("arguments") or {})
                    calls.append(
                        {"id": c.get("id") or f"call_{i}", "type": "function", "function": fn}
                    )
                msg["tool_calls"] = calls
            msg.pop("tool_name", None)
            msg.pop("thinking", None)
            out.append(msg)
        return out

    async def chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        schema: dict[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        options: ChatOptions = ChatOptions(),
        mode: StructuredMode | None = None,
        form: Form | None = None,
    ) -> ChatResult:
        form = resolve_form(self.kind, schema, mode, form)
        timeout = self._timeout(options)
        kwargs: dict[str, Any] = {"timeout": timeout, **openai_request(form, schema, SCHEMA_NAME)}
        if tools:
            kwargs["tools"] = [dict(t) for t in tools]
        if options.temperature is not None:
            kwargs["temperature"] = options.temperature
        if options.seed is not None:
            kwargs["seed"] = options.seed
        if options.max_tokens is not None:
            kwargs["max_tokens"] = options.max_tokens
        lib = self._lib()
        msgs = self._messages(messages)
        started = time.perf_counter()

        async def streamed() -> tuple[Any, int]:
            state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
            chunks = pieces = 0  # pieces: content and tool-call deltas, a token each
            try:
                stream = await lib.chat.completions.create(
                    model=model,
                    messages=msgs,
                    stream=True,
                    stream_options={"include_usage": True},
                    **kwargs,
                )
                try:
                    async for chunk in stream:
                        chunks += 1
                        state.handle_chunk(chunk)
                        pieces += sum(
                            1
                            for c in chunk.choices
                            if c.delta.content or c.delta.tool_calls or c.delta.refusal
                        )
                finally:  # at the deadline too: closing the connection stops the generation
                    await stream.close()
            except openai.APITimeoutError:
                raise
            except (httpx.TransportError, openai.APIConnectionError):
                if chunks:
                    raise
            if chunks == 0:  # llama-cpp-python fails a stream after its 200 (the connection
                # drops, or no event): ask again without streaming to hear the error; the
                # pooled connection may be the dead one, so a connection error gets a new one
                try:
                    again = await lib.chat.completions.create(model=model, messages=msgs, **kwargs)
                except openai.APITimeoutError:
                    raise
                except openai.APIConnectionError:
                    again = await lib.chat.completions.create(model=model, messages=msgs, **kwargs)
                return again, 0
            return state.current_completion_snapshot, pieces

        resp, pieces = await self._guard("chat", streamed, timeout)
        latency = time.perf_counter() - started
        result = self._parsed("chat", lambda: self._result(resp, form, latency))
        if result.tokens_out is None:
            result.tokens_out = pieces
        if result.tokens_in is None:
            result.tokens_in = await self._count_tokens(msgs)
        return result

    @staticmethod
    def _result(resp: Any, form: Form, latency: float) -> ChatResult:
        if not resp.choices:
            raise ValueError("no choices in the response")
        choice = resp.choices[0]
        msg = choice.message
        extra = msg.model_extra or {}
        thinking = extra.get("reasoning") or extra.get("reasoning_content")
        if thinking is not None and not isinstance(thinking, str):
            thinking = json.dumps(thinking)
        calls = []
        for tc in msg.tool_calls or []:
            fn = getattr(tc, "function", None)
            if fn is None:
                custom = getattr(tc, "custom", None)
                calls.append(
                    ToolCall(
                        name=str(getattr(custom, "name", "")),
                        arguments={},
                        id=getattr(tc, "id", None),
                        arguments_error=f"unsupported tool call type {getattr(tc, 'type', None)!r}",
                    )
                )
                continue
            args, error = decode_arguments(fn.arguments)
            calls.append(ToolCall(name=fn.name, arguments=args, id=tc.id, arguments_error=error))
        usage = resp.usage
        return ChatResult(
            content=msg.content or "",
            mode=form.mode,
            form=form.value,
            latency_seconds=latency,
            thinking=thinking or None,
            tool_calls=calls,
            tokens_in=usage.prompt_tokens if usage is not None else None,
            tokens_out=usage.completion_tokens if usage is not None else None,
            finish_reason=choice.finish_reason,
            refusal=msg.refusal,
            raw=resp.model_dump(mode="json", exclude_unset=True),
        )

    def _root(self) -> str:
        """The server root: ``base_url`` without its ``/v1``."""
        return re.sub(r"/v1/?$", "", self.endpoint.base_url.rstrip("/"))

    async def _count_tokens(self, messages: Sequence[Mapping[str, Any]]) -> int | None:
        """The prompt's tokens from the server's tokenizer, for servers that stream no usage
        (llama-cpp-python: ``/extras/tokenize/count``; llama-server: ``/tokenize``). The
        message texts only, without the chat template's few tokens."""
        text = "\n".join(message_text(m.get("content")) for m in messages)
        lib = self._lib()
        for path, body in (
            ("/extras/tokenize/count", {"input": text}),
            ("/tokenize", {"content": text}),
        ):
            if self._tokenizer not in (None, path):
                continue
            url = self._root() + path

            async def post(url: str = url, body: dict[str, str] = body) -> Any:
                return await lib.post(url, body=body, cast_to=object)

            try:
                out = await self._guard("count tokens", post, self.endpoint.timeout_seconds)
            except LLMError:
                continue
            count = out.get("count") if isinstance(out, dict) else None
            if count is None and isinstance(out, dict) and isinstance(out.get("tokens"), list):
                count = len(out["tokens"])
            if isinstance(count, int):
                self._tokenizer = path
                return count
        self._tokenizer = ""  # neither: stop asking
        return None

    async def context_window(self, model: str) -> int | None:
        """llama-server's ``/props`` (``n_ctx``, also under ``default_generation_settings``);
        other OpenAI-compatible servers do not say (an overflow error may, see ``forms``)."""
        lib = self._lib()
        try:
            props = await self._guard(
                "props",
                lambda: lib.get(self._root() + "/props", cast_to=object),
                self.endpoint.timeout_seconds,
            )
        except LLMError:
            return None
        if not isinstance(props, dict):
            return None
        for where in (props, props.get("default_generation_settings")):
            if isinstance(where, dict) and isinstance(where.get("n_ctx"), int):
                return int(where["n_ctx"])
        return None

    async def list_models(self) -> list[ModelInfo]:
        lib = self._lib()
        page = await self._guard("list models", lib.models.list, self.endpoint.timeout_seconds)
        return self._parsed(
            "list models",
            lambda: [
                ModelInfo(
                    name=str(m.id),
                    details={
                        k: v
                        for k, v in (("owned_by", m.owned_by), ("created", m.created))
                        if v is not None
                    },
                )
                for m in page.data
            ],
        )

    async def loaded_models(self) -> list[LoadedModel]:
        return []

    async def load(self, model: str, keep_alive: str | int | None = None) -> None:
        return None

    async def unload(self, model: str) -> None:
        return None

    def assistant_message(self, result: ChatResult) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": result.content or None}
        if result.tool_calls:
            msg["tool_calls"] = [
                {
                    "id": c.id or f"call_{i}",
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                }
                for i, c in enumerate(result.tool_calls)
            ]
        return msg

    def tool_message(self, call: ToolCall, content: str) -> dict[str, Any]:
        return {"role": "tool", "tool_call_id": call.id or "call_0", "content": content}


def _openai_detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
    if isinstance(body, str) and body:
        return body
    return str(exc.message)


# -- factory, negotiation, connection test -------------------------------------------------------
