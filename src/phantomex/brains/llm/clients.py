"""Thin adapters over the official ``ollama`` and ``openai`` client libraries.

Both turn one chat call into a :class:`ChatResult` and every library or transport failure into an
:class:`LLMError` (kind ``timeout | connection | http | rate_limit | bad_response``) whose
message never contains the endpoint's API key. Concurrency limits and keep-alive policy are the
caller's business (see ``runtime.py``); ``ChatOptions.keep_alive`` is passed to Ollama as is.

:func:`chat_structured` negotiates the structured-output form (:mod:`forms`): the schema in each
form real servers speak, then plain JSON, then prompt-only, remembering per (endpoint, model)
every form the server rejected, whether or not a later call succeeds.

Every chat call streams, so a call abandoned at its deadline closes the connection and the
server stops generating (llama.cpp and Ollama do on a disconnect; a non-streaming request would
keep the server busy until its answer is complete).
"""

from __future__ import annotations

import abc
import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import httpx
import ollama
import openai
from openai.lib.streaming.chat import ChatCompletionStreamState

from phantomex.brains.llm.forms import (
    FORMS,
    Failure,
    Form,
    classify,
    context_limit,
    default_form,
    ollama_format,
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

T = TypeVar("T")

SCHEMA_NAME = "decision"
_DETAIL_MAX = 500


def _safe_url(url: str) -> str:
    """``url`` without user:password@."""
    return re.sub(r"(?<=//)[^/@]*@", "", url)


@dataclass
class _Bound:
    loop: asyncio.AbstractEventLoop
    lib: Any


class LLMClient(abc.ABC):
    """One endpoint. Create with :func:`make_client`; close with :meth:`aclose`.

    The library client is created lazily per event loop (an ``httpx`` pool cannot be shared
    between loops), so one instance may be used from successive ``asyncio.run`` calls."""

    kind: ClassVar[str]

    def __init__(self, endpoint: EndpointConfig) -> None:
        self.endpoint = endpoint
        self._bound: _Bound | None = None

    @property
    def name(self) -> str:
        return self.endpoint.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {_safe_url(self.endpoint.base_url)!r})"

    # -- API -------------------------------------------------------------------------------------
    @abc.abstractmethod
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
        """One streamed chat call, cancelled at the deadline. ``form`` (see :mod:`forms`)
        defaults to the standard form of ``mode``, which defaults to SCHEMA when a ``schema``
        is given, else PROMPT. ``tools`` are in the OpenAI/Ollama ``{"type": "function", ...}``
        shape."""

    async def context_window(self, model: str) -> int | None:
        """The model's context in tokens where the server says it (None: unknown)."""
        return None

    @abc.abstractmethod
    async def list_models(self) -> list[ModelInfo]: ...

    @abc.abstractmethod
    async def loaded_models(self) -> list[LoadedModel]: ...

    @abc.abstractmethod
    async def load(self, model: str, keep_alive: str | int | None = None) -> None:
        """Load ``model`` ahead of the calls (a no-op where the server manages it)."""

    @abc.abstractmethod
    async def unload(self, model: str) -> None:
        """Free ``model``'s memory now (a no-op where the server manages it)."""

    @abc.abstractmethod
    def assistant_message(self, result: ChatResult) -> dict[str, Any]:
        """The assistant turn of ``result`` (with its tool calls) in this API's message format."""

    @abc.abstractmethod
    def tool_message(self, call: ToolCall, content: str) -> dict[str, Any]:
        """A tool result answering ``call``, in this API's message format."""

    async def aclose(self) -> None:
        bound, self._bound = self._bound, None
        if bound is not None and bound.loop is asyncio.get_running_loop():
            await self._close_lib(bound.lib)

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- helpers for the implementations ---------------------------------------------------------
    @abc.abstractmethod
    def _new_lib(self) -> Any: ...

    @abc.abstractmethod
    async def _close_lib(self, lib: Any) -> None: ...

    @abc.abstractmethod
    def _convert(self, exc: Exception) -> LLMError: ...

    def _lib(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound.loop is not loop:
            self._bound = _Bound(loop, self._new_lib())
        return self._bound.lib

    def _timeout(self, options: ChatOptions) -> float:
        return options.timeout_seconds or self.endpoint.timeout_seconds

    def _redact(self, text: str) -> str:
        key = self.endpoint.api_key.get_secret_value() if self.endpoint.api_key else ""
        if key:
            text = text.replace(key, "***")
            if len(key) >= 12:  # pieces of a long key (e.g. "sk-abc...xyz" style echoes)
                for piece in (key[:12], key[-8:]):
                    text = text.replace(piece, "***")
        return text

    def _error(self, kind: str, detail: str, status: int | None = None) -> LLMError:
        detail = " ".join(str(detail).split())
        if len(detail) > _DETAIL_MAX:
            detail = detail[:_DETAIL_MAX] + "..."
        where = f"{self.name} ({self.kind} {_safe_url(self.endpoint.base_url)})"
        return LLMError(kind, self._redact(f"{where}: {detail}"), status=status)

    async def _guard(self, what: str, call: Callable[[], Awaitable[T]], timeout: float) -> T:
        """``call()`` within ``timeout`` seconds; any failure becomes an LLMError."""
        try:
            async with asyncio.timeout(timeout):
                return await call()
        except LLMError:
            raise
        except TimeoutError:
            raise self._error("timeout", f"{what} timed out after {timeout:g} s") from None
        except Exception as exc:
            err = self._convert(exc)
            raise self._error(err.kind, f"{what}: {err}", err.status) from None

    def _parsed(self, what: str, parse: Callable[[], T]) -> T:
        try:
            return parse()
        except LLMError:
            raise
        except Exception as exc:
            raise self._error(
                "bad_response", f"{what}: unexpected response ({type(exc).__name__}: {exc})"
            ) from None


def _resolve_form(
    kind: str, schema: dict[str, Any] | None, mode: StructuredMode | None, form: Form | None
) -> Form:
    if form is None:
        if mode is None:
            mode = StructuredMode.SCHEMA if schema is not None else StructuredMode.PROMPT
        form = default_form(StructuredMode(mode))
    form = Form(form)
    if form not in FORMS[kind]:
        raise ValueError(f"a {kind} endpoint has no structured form {form.value!r}")
    if form.mode is StructuredMode.SCHEMA and schema is None:
        raise ValueError(f"structured form {form.value} needs a schema")
    return form


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, Mapping) and "text" in p
        )
    return str(content)


def decode_arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    """Tool-call arguments as a dict, or ``({}, error)`` when they are not a JSON object."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}, None
    if isinstance(raw, Mapping):
        return dict(raw), None
    if not isinstance(raw, str):
        return {}, f"arguments are a {type(raw).__name__}, not a JSON object"
    try:
        value = json.loads(raw)
    except ValueError as exc:
        return {}, f"arguments are not valid JSON ({exc}): {raw[:200]!r}"
    if not isinstance(value, dict):
        return {}, f"arguments are not a JSON object: {raw[:200]!r}"
    return value, None


# -- Ollama --------------------------------------------------------------------------------------
class OllamaClient(LLMClient):
    """``ollama.AsyncClient``: ``/api/chat``, ``/api/tags``, ``/api/ps``, ``/api/generate``."""

    kind = "ollama"

    def _new_lib(self) -> ollama.AsyncClient:
        headers = {}
        if self.endpoint.api_key is not None:
            headers["Authorization"] = f"Bearer {self.endpoint.api_key.get_secret_value()}"
        return ollama.AsyncClient(
            host=self.endpoint.base_url, timeout=self.endpoint.timeout_seconds, headers=headers
        )

    async def _close_lib(self, lib: Any) -> None:
        await lib.close()

    def _convert(self, exc: Exception) -> LLMError:
        if isinstance(exc, ollama.ResponseError):
            status = exc.status_code if exc.status_code and exc.status_code > 0 else None
            if status is None:
                return LLMError("bad_response", f"server error: {exc.error}")
            kind = "rate_limit" if status == 429 else "http"
            return LLMError(kind, f"HTTP {status}: {exc.error}", status=status)
        if isinstance(exc, httpx.TimeoutException):
            return LLMError("timeout", f"timed out ({type(exc).__name__})")
        if isinstance(exc, ConnectionError | httpx.ConnectError):
            return LLMError("connection", "cannot connect to the server")
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
            return LLMError("connection", f"the connection failed ({type(exc).__name__}: {exc})")
        if isinstance(exc, httpx.TransportError | OSError):
            return LLMError("connection", f"{type(exc).__name__}: {exc}")
        return LLMError("bad_response", f"unexpected response ({type(exc).__name__}: {exc})")

    @staticmethod
    def _messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Messages the ``ollama`` library accepts: tool-call arguments as objects, text content,
        ``tool_name`` on tool results (also OpenAI-style messages are converted)."""
        out: list[dict[str, Any]] = []
        for m in messages:
            msg: dict[str, Any] = {
                "role": m.get("role", "user"),
                "content": _text(m.get("content")),
            }
            for key in ("images", "thinking", "tool_name"):
                if m.get(key):
                    msg[key] = m[key]
            if msg["role"] == "tool" and "tool_name" not in msg and m.get("name"):
                msg["tool_name"] = m["name"]
            calls = []
            for c in m.get("tool_calls") or []:
                fn = c.get("function") or {}
                args, _ = decode_arguments(fn.get("arguments"))
                calls.append({"function": {"name": fn.get("name", ""), "arguments": args}})
            if calls:
                msg["tool_calls"] = calls
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
        form = _resolve_form(self.kind, schema, mode, form)
        kwargs: dict[str, Any] = {}
        fmt = ollama_format(form, schema)
        if fmt is not None:
            kwargs["format"] = fmt
        opts = {
            k: v
            for k, v in (
                ("temperature", options.temperature),
                ("seed", options.seed),
                ("num_predict", options.max_tokens),
                ("num_ctx", options.num_ctx),
            )
            if v is not None
        }
        if opts:
            kwargs["options"] = opts
        if options.keep_alive is not None:
            kwargs["keep_alive"] = options.keep_alive
        if tools:
            kwargs["tools"] = [dict(t) for t in tools]
        lib = self._lib()
        msgs = self._messages(messages)
        started = time.perf_counter()

        async def streamed() -> list[Any]:
            stream = await lib.chat(model=model, messages=msgs, stream=True, **kwargs)
            try:
                return [part async for part in stream]
            finally:  # at the deadline too: closing the connection stops the generation
                await stream.aclose()

        parts = await self._guard("chat", streamed, self._timeout(options))
        latency = time.perf_counter() - started
        return self._parsed("chat", lambda: self._result(parts, form, latency))

    @staticmethod
    def _result(parts: list[Any], form: Form, latency: float) -> ChatResult:
        """The streamed parts of one answer as one result (the last part has the counts)."""
        if not parts:
            raise ValueError("an empty stream")
        content, thinking, calls, raw_calls = [], [], [], []
        for part in parts:
            msg = part.message
            content.append(msg.content or "")
            thinking.append(msg.thinking or "")
            for tc in msg.tool_calls or []:
                raw_calls.append(tc.model_dump(mode="json", exclude_none=True))
                args, error = decode_arguments(tc.function.arguments)
                calls.append(
                    ToolCall(
                        name=tc.function.name,
                        arguments=args,
                        id=getattr(tc, "id", None),
                        arguments_error=error,
                    )
                )
        last = parts[-1]
        load_ns = last.load_duration
        raw = last.model_dump(mode="json", exclude_none=True)
        message: dict[str, Any] = {"role": "assistant", "content": "".join(content)}
        if any(thinking):
            message["thinking"] = "".join(thinking)
        if raw_calls:
            message["tool_calls"] = raw_calls
        raw["message"] = message
        return ChatResult(
            content="".join(content),
            mode=form.mode,
            form=form.value,
            latency_seconds=latency,
            thinking="".join(thinking) or None,
            tool_calls=calls,
            tokens_in=last.prompt_eval_count,
            tokens_out=last.eval_count,
            finish_reason=last.done_reason,
            load_seconds=load_ns / 1e9 if load_ns is not None else None,
            raw=raw,
        )

    async def context_window(self, model: str) -> int | None:
        """``/api/show``: the model's trained context (``<arch>.context_length``) and its
        ``num_ctx`` parameter, the smaller of the two where both are set."""
        lib = self._lib()
        try:
            resp = await self._guard(
                f"show {model}", lambda: lib.show(model), self.endpoint.timeout_seconds
            )
        except LLMError:
            return None
        found: list[int] = []
        for key, value in (resp.modelinfo or {}).items():
            if key.endswith(".context_length") and isinstance(value, int):
                found.append(value)
        m = re.search(r"^\s*num_ctx\s+(\d+)", resp.parameters or "", re.MULTILINE)
        if m:
            found.append(int(m.group(1)))
        return min(found) if found else None

    async def list_models(self) -> list[ModelInfo]:
        lib = self._lib()
        resp = await self._guard("list models", lib.list, self.endpoint.timeout_seconds)

        def parse() -> list[ModelInfo]:
            out = []
            for m in resp.models:
                details = m.details.model_dump(exclude_none=True) if m.details else {}
                if m.modified_at is not None:
                    details["modified_at"] = m.modified_at.isoformat()
                if m.digest:
                    details["digest"] = m.digest
                size = int(m.size) if m.size is not None else None
                out.append(ModelInfo(name=str(m.model), size_bytes=size, details=details))
            return out

        return self._parsed("list models", parse)

    async def loaded_models(self) -> list[LoadedModel]:
        lib = self._lib()
        resp = await self._guard("list loaded models", lib.ps, self.endpoint.timeout_seconds)
        return self._parsed(
            "list loaded models",
            lambda: [
                LoadedModel(
                    name=str(m.model or m.name),
                    size_vram_bytes=int(m.size_vram) if m.size_vram is not None else None,
                    expires_at=m.expires_at.isoformat() if m.expires_at else None,
                )
                for m in resp.models
            ],
        )

    async def load(self, model: str, keep_alive: str | int | None = None) -> None:
        """The documented preload: a generate call without a prompt."""
        lib = self._lib()
        kwargs: dict[str, Any] = {} if keep_alive is None else {"keep_alive": keep_alive}
        await self._guard(
            f"load {model}",
            lambda: lib.generate(model=model, **kwargs),
            self.endpoint.timeout_seconds,
        )

    async def unload(self, model: str) -> None:
        """The documented unload: a generate call without a prompt and ``keep_alive: 0``."""
        lib = self._lib()
        await self._guard(
            f"unload {model}",
            lambda: lib.generate(model=model, keep_alive=0),
            self.endpoint.timeout_seconds,
        )

    def assistant_message(self, result: ChatResult) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": result.content}
        if result.tool_calls:
            msg["tool_calls"] = [
                {"function": {"name": c.name, "arguments": c.arguments}} for c in result.tool_calls
            ]
        return msg

    def tool_message(self, call: ToolCall, content: str) -> dict[str, Any]:
        return {"role": "tool", "content": content, "tool_name": call.name}


# -- OpenAI-compatible ---------------------------------------------------------------------------
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
        form = _resolve_form(self.kind, schema, mode, form)
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
        text = "\n".join(_text(m.get("content")) for m in messages)
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
def make_client(endpoint: EndpointConfig) -> LLMClient:
    if endpoint.kind == "ollama":
        return OllamaClient(endpoint)
    if endpoint.kind == "openai":
        return OpenAIClient(endpoint)
    raise ValueError(f"unknown endpoint kind {endpoint.kind!r}")


def format_rejected(exc: LLMError) -> bool:
    """Whether the server refused the structured-output form (rather than failing)."""
    return classify(exc) is Failure.FORMAT


def context_overflow(exc: LLMError) -> bool:
    """Whether the prompt and answer did not fit the model's context (shorten the prompt)."""
    return classify(exc) is Failure.CONTEXT


async def chat_structured(
    client: LLMClient,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    schema: dict[str, Any],
    options: ChatOptions = ChatOptions(),
    memory: dict[tuple[str, str], Any] | None = None,
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> ChatResult:
    """A chat asking for JSON matching ``schema`` in the strongest form the server speaks.

    The forms of :data:`forms.FORMS` are tried in order from the one remembered in
    ``memory[(endpoint name, model)]``: each rejection of a form (:func:`forms.classify`) is
    remembered at once, so a model whose calls then keep failing is not probed again, and the
    form that answered is remembered. A context overflow or any other error is raised as is
    (another form would not help); so is the last form's rejection."""
    key = (client.name, model)
    forms = FORMS[client.kind]
    remembered = (memory or {}).get(key)
    start = Form(remembered) if remembered in forms else forms[0]
    last: LLMError | None = None
    for i in range(forms.index(start), len(forms)):
        form = forms[i]
        try:
            result = await client.chat(
                model, messages, schema=schema, tools=tools, options=options, form=form
            )
        except LLMError as exc:
            if not format_rejected(exc):
                raise
            last = exc
            if memory is not None and i + 1 < len(forms):
                memory[key] = forms[i + 1]
            continue
        if memory is not None:
            memory[key] = form
        return result
    assert last is not None
    raise last


def overflow_limit(exc: LLMError) -> int | None:
    """The context window an overflow error states, if any."""
    return context_limit(exc) if context_overflow(exc) else None


async def test_connection(endpoint: EndpointConfig) -> dict[str, Any]:
    """Reach ``endpoint`` and list its models: ``{"ok", "latency_seconds", "models",
    "model_names"}`` or ``{"ok": False, "latency_seconds", "error", "error_kind", "status"}``."""
    client = make_client(endpoint)
    started = time.perf_counter()
    try:
        models = await client.list_models()
    except LLMError as exc:
        return {
            "ok": False,
            "endpoint": endpoint.name,
            "kind": endpoint.kind,
            "latency_seconds": round(time.perf_counter() - started, 4),
            "error": str(exc),
            "error_kind": exc.kind,
            "status": exc.status,
        }
    finally:
        await client.aclose()
    return {
        "ok": True,
        "endpoint": endpoint.name,
        "kind": endpoint.kind,
        "latency_seconds": round(time.perf_counter() - started, 4),
        "models": len(models),
        "model_names": [m.name for m in models],
        "error": None,
    }


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
