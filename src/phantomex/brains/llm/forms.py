"""The wire forms of a structured-output request, and what a failed call means.

Real servers speak different dialects for "answer with JSON matching this schema":

* ``json_schema``: OpenAI ``response_format: {"type": "json_schema", "json_schema": {...}}``
  (OpenAI, vLLM, llama.cpp's ``llama-server``, LM Studio); Ollama ``format: <schema>``;
* ``json_object+schema``: ``response_format: {"type": "json_object", "schema": {...}}``
  (llama-cpp-python's server, which answers ``json_schema`` with HTTP 500; llama-server too);
* ``guided_json``: vLLM's ``guided_json`` request field (older vLLM releases);
* ``json_object``: any JSON, no schema (OpenAI ``json_object``, Ollama ``format: "json"``);
* ``prompt``: no constraint, the instructions in the prompt only.

:func:`classify` tells what a failed call means for the next attempt: a rejected form (try the
next one), a context overflow (send a shorter prompt, never another form), or anything else.
"""

from __future__ import annotations

import enum
import re
from typing import Any

from phantomex.brains.llm.types import LLMError, StructuredMode


class Form(enum.StrEnum):
    """A wire form, strongest first within each kind (see the module docstring)."""

    JSON_SCHEMA = "json_schema"
    JSON_OBJECT_SCHEMA = "json_object+schema"
    GUIDED_JSON = "guided_json"
    JSON_OBJECT = "json_object"
    PROMPT = "prompt"

    @property
    def mode(self) -> StructuredMode:
        """How strongly the answer is constrained."""
        if self is Form.JSON_OBJECT:
            return StructuredMode.JSON
        if self is Form.PROMPT:
            return StructuredMode.PROMPT
        return StructuredMode.SCHEMA


#: the forms each endpoint kind may speak, in the order they are tried
FORMS: dict[str, tuple[Form, ...]] = {
    "openai": tuple(Form),
    "ollama": (Form.JSON_SCHEMA, Form.JSON_OBJECT, Form.PROMPT),
}


def default_form(mode: StructuredMode) -> Form:
    """The standard form of ``mode``."""
    return {
        StructuredMode.SCHEMA: Form.JSON_SCHEMA,
        StructuredMode.JSON: Form.JSON_OBJECT,
        StructuredMode.PROMPT: Form.PROMPT,
    }[StructuredMode(mode)]


def openai_request(form: Form, schema: dict[str, Any] | None, name: str) -> dict[str, Any]:
    """The request fields of ``form`` for an OpenAI-compatible server (``extra_body`` holds
    what the ``openai`` library does not know)."""
    if form is Form.JSON_SCHEMA:
        spec = {"name": name, "schema": schema, "strict": False}
        return {"response_format": {"type": "json_schema", "json_schema": spec}}
    if form is Form.JSON_OBJECT_SCHEMA:
        return {"response_format": {"type": "json_object", "schema": schema}}
    if form is Form.GUIDED_JSON:
        return {"extra_body": {"guided_json": schema}}
    if form is Form.JSON_OBJECT:
        return {"response_format": {"type": "json_object"}}
    return {}


def ollama_format(form: Form, schema: dict[str, Any] | None) -> dict[str, Any] | str | None:
    """Ollama's ``format`` for ``form`` (only the standard forms exist there)."""
    if form is Form.JSON_SCHEMA:
        return schema
    if form is Form.JSON_OBJECT:
        return "json"
    if form is Form.PROMPT:
        return None
    raise ValueError(f"Ollama has no structured form {form.value!r}")


# -- what an error means -------------------------------------------------------------------------
class Failure(enum.StrEnum):
    FORMAT = "format_rejected"  # this request form is not spoken here: try the next form
    CONTEXT = "context_overflow"  # the prompt (plus max_tokens) does not fit: shorten it
    OTHER = "other"  # timeouts, connection, auth, unknown model, server errors...


_FORMAT_WORDS = (
    "response_format",
    "json_schema",
    "json_object",
    "guided_json",
    "structured output",
    "format",
    "grammar",
)
_CONTEXT = re.compile(
    r"context[ _-]?(length|window|size)|context_length_exceeded|maximum context|n_ctx"
    r"|exceeds? the (available )?context|prompt is too long|too many tokens|input is too long",
    re.IGNORECASE,
)
_CONTEXT_LIMIT = (
    re.compile(r"maximum context length is (\d+)", re.IGNORECASE),  # OpenAI, llama-cpp-python
    re.compile(r"context (?:window|size|length) (?:of |is |= ?)?\(?(\d+)", re.IGNORECASE),
    re.compile(r"n_ctx(?:_slot)?\s*[=:]?\s*(\d+)", re.IGNORECASE),  # llama-server
)
#: words of a 4xx that is about something else than the request's format
_NOT_FORMAT = ("model", "api key", "api_key", "unauthorized", "not found", "tool")


def classify(exc: LLMError) -> Failure:
    """What a failed call means for the next attempt.

    * a context overflow: any HTTP error whose message is about the context length;
    * a rejected form: an HTTP 400/422 (not about the model, key or tools), or any HTTP error
      (also a 5xx: llama-cpp-python's request validation is a 500) naming the format;
    * anything else: timeouts, refused connections, rate limits, other server errors."""
    if exc.kind != "http":
        return Failure.OTHER
    text = str(exc).lower()
    detail = text.split("): ", 1)[1] if "): " in text else text  # without the endpoint prefix
    if _CONTEXT.search(detail):
        return Failure.CONTEXT
    if any(word in detail for word in _FORMAT_WORDS):
        return Failure.FORMAT
    if exc.status in (400, 422) and not any(word in detail for word in _NOT_FORMAT):
        return Failure.FORMAT
    return Failure.OTHER


_PROMPT_TOKENS = re.compile(r"\((\d+) in the messages", re.IGNORECASE)


def overflow_prompt_tokens(exc: LLMError) -> int | None:
    """The prompt's tokens where an overflow error states them (OpenAI, llama-cpp-python:
    "... (3031 in the messages, 50 in the completion)")."""
    m = _PROMPT_TOKENS.search(str(exc))
    return int(m.group(1)) if m else None


def context_limit(exc: LLMError) -> int | None:
    """The server's context window in tokens, where an overflow error states it."""
    for pattern in _CONTEXT_LIMIT:
        m = pattern.search(str(exc))
        if m:
            return int(m.group(1))
    return None
