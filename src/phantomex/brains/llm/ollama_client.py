"""The adapter over the official ``ollama`` client library."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import ollama

from phantomex.brains.llm.client_base import LLMClient, decode_arguments, message_text, resolve_form
from phantomex.brains.llm.forms import (
    Form,
    ollama_format,
)
from phantomex.brains.llm.types import (
    ChatOptions,
    ChatResult,
    LLMError,
    LoadedModel,
    ModelInfo,
    StructuredMode,
    ToolCall,
)


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
                "content": message_text(m.get("content")),
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
        form = resolve_form(self.kind, schema, mode, form)
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
