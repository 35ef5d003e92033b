"""LLM clients for endpoints, and structured chats over them.

:func:`make_client` picks the adapter of an endpoint's kind (:mod:`ollama_client`,
:mod:`openai_client`): each turns one chat call into a :class:`ChatResult` and every library or
transport failure into an :class:`LLMError` (kind ``timeout | connection | http | rate_limit |
bad_response``) whose message never contains the endpoint's API key. Concurrency limits and
keep-alive policy are the caller's business (see ``runtime.py``).

:func:`chat_structured` negotiates the structured-output form (:mod:`forms`): the schema in each
form real servers speak, then plain JSON, then prompt-only, remembering per (endpoint, model)
every form the server rejected, whether or not a later call succeeds.

Every chat call streams, so a call abandoned at its deadline closes the connection and the
server stops generating (llama.cpp and Ollama do on a disconnect; a non-streaming request would
keep the server busy until its answer is complete).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from phantomex.brains.llm.client_base import LLMClient
from phantomex.brains.llm.forms import (
    FORMS,
    Failure,
    Form,
    classify,
    context_limit,
)
from phantomex.brains.llm.ollama_client import OllamaClient
from phantomex.brains.llm.openai_client import OpenAIClient
from phantomex.brains.llm.types import (
    ChatOptions,
    ChatResult,
    EndpointConfig,
    LLMError,
)


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
