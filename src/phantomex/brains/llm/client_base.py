"""The base of the thin adapters over the ``ollama`` and ``openai`` client libraries: one chat
call per :class:`ChatResult`, every failure an :class:`LLMError` whose message never contains the
endpoint's API key, the library client bound to the event loop that made it."""

from __future__ import annotations

import abc
import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from phantomex.brains.llm.forms import (
    FORMS,
    Form,
    default_form,
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


def safe_url(url: str) -> str:
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
        return f"{type(self).__name__}({self.name!r}, {safe_url(self.endpoint.base_url)!r})"

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
        where = f"{self.name} ({self.kind} {safe_url(self.endpoint.base_url)})"
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


def resolve_form(
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


def message_text(content: Any) -> str:
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
