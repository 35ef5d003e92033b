"""The Ollama and OpenAI wire formats: response templates, error bodies, request forms, streams."""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, Literal

Api = Literal["ollama", "openai"]
MODES = ("json_schema", "json_object+schema", "guided_json", "json_object", "prompt")
STANDARD_MODES = ("json_schema", "json_object", "prompt")
DEFAULT_KEEP_ALIVE = 300.0  # Ollama's default "5m"
FOREVER = math.inf
OLLAMA_VERSION = "0.9.6"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@cache
def template(name: str) -> dict[str, Any]:
    """A fixture shipped in ``fixtures/`` (a documented or recorded response)."""
    text = (
        resources.files("phantomex.devtools.llm_sim").joinpath("fixtures", name).read_text("utf-8")
    )
    return dict(json.loads(text))


def shaped(tmpl: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` in the template's key order; keys the template lacks are appended."""
    out = {k: values[k] for k in tmpl if k in values}
    out.update({k: v for k, v in values.items() if k not in out})
    return out


def parse_keep_alive(value: Any) -> float:
    """Seconds to stay loaded: Ollama's ``keep_alive`` (number of seconds or a Go duration such
    as ``"5m"``); negative means forever, missing or invalid means the 5-minute default."""
    if value is None or isinstance(value, bool):
        return DEFAULT_KEEP_ALIVE
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            sign = -1.0 if text.startswith("-") else 1.0
            parts = _DURATION.findall(text.lstrip("+-"))
            if not parts or "".join(a + u for a, u in parts) != text.lstrip("+-"):
                return DEFAULT_KEEP_ALIVE
            seconds = sign * sum(float(a) * _UNITS[u] for a, u in parts)
    else:
        return DEFAULT_KEEP_ALIVE
    return FOREVER if seconds < 0 else seconds


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def local_iso(ts: float) -> str:
    if ts == FOREVER:
        ts = time.time() + 293 * 365.25 * 86400  # Ollama shows year ~2318 for "forever"
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="microseconds")


class ApiError(Exception):
    def __init__(
        self, status: int, body: Any, headers: dict[str, str] | None = None, *, counted: bool = True
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.counted = counted


def ollama_error(message: str) -> dict[str, Any]:
    return {"error": message}


def openai_error(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_body(api: Api, status: int, message: str | None = None) -> dict[str, Any]:
    if api == "ollama":
        return ollama_error(message or template("ollama_error.json")["error"])
    if status == 429:
        return openai_error(
            message
            or "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. "
            "Please try again in 20s.",
            "requests",
            "rate_limit_exceeded",
        )
    if status >= 500:
        return openai_error(
            message or "The server had an error while processing your request. Sorry about that!",
            "server_error",
        )
    return openai_error(message or f"HTTP {status}", "invalid_request_error")


def mode_of(api: Api, body: dict[str, Any]) -> str:
    if api == "ollama":
        fmt = body.get("format")
        if fmt in (None, ""):
            return "prompt"
        if fmt == "json":
            return "json_object"
        if isinstance(fmt, dict):
            return "json_schema"
        raise ApiError(400, ollama_error(f"invalid format: {fmt!r}"))
    rf = body.get("response_format")
    if rf is None:
        return "guided_json" if "guided_json" in body else "prompt"
    kind = rf.get("type") if isinstance(rf, dict) else None
    if kind == "json_object" and "schema" in rf:
        return "json_object+schema"
    if kind == "text":
        return "prompt"
    if kind in ("json_object", "json_schema"):
        if kind == "json_schema" and not isinstance(rf.get("json_schema"), dict):
            raise ApiError(
                400,
                openai_error(
                    "Missing required parameter: 'response_format.json_schema'.",
                    "invalid_request_error",
                    "missing_required_parameter",
                    "response_format.json_schema",
                ),
            )
        return str(kind)
    raise ApiError(
        400,
        openai_error(
            f"Invalid value for 'response_format': {rf!r}.",
            "invalid_request_error",
            "invalid_value",
            "response_format",
        ),
    )


def standard_unsupported(api: Api, mode: str, model: str) -> ApiError:
    if api == "ollama":
        return ApiError(
            400,
            ollama_error(
                f"format: structured output '{mode}' (response_format) is not supported by "
                f"model '{model}'"
            ),
        )
    return ApiError(
        400,
        openai_error(
            f"Invalid parameter: 'response_format' of type '{mode}' is not supported with "
            f"this model ({model}).",
            "invalid_request_error",
            "unsupported_parameter",
            "response_format",
        ),
    )


def _pieces(text: str, size: int = 4) -> list[str]:
    """``text`` in token-sized pieces."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def openai_chunks(
    body: dict[str, Any], full: dict[str, Any], reasoning_field: str, stream_usage: bool
) -> list[Any]:
    """A ``chat.completion`` as its ``chat.completion.chunk`` events (``reasoning_field``: the
    message key of the reasoning; ``stream_usage``: whether usage may end the stream)."""
    choice = full["choices"][0]
    msg = choice["message"]
    keys = ("id", "created", "model", "system_fingerprint")
    head: dict[str, Any] = {k: full[k] for k in keys if k in full}
    head["object"] = "chat.completion.chunk"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **head,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    out = [chunk({"role": "assistant", "content": ""})]
    reasoning = msg.get(reasoning_field)
    if reasoning:
        out += [chunk({reasoning_field: p}) for p in _pieces(reasoning)]
    if msg.get("refusal"):
        out += [chunk({"refusal": p}) for p in _pieces(msg["refusal"])]
    out += [chunk({"content": p}) for p in _pieces(msg.get("content") or "")]
    for i, call in enumerate(msg.get("tool_calls") or []):
        out.append(chunk({"tool_calls": [{"index": i, **call}]}))
    out.append(chunk({}, choice["finish_reason"]))
    options = body.get("stream_options")
    if stream_usage and isinstance(options, dict) and options.get("include_usage"):
        out.append({**head, "choices": [], "usage": full["usage"]})
    return out


def ollama_parts(full: dict[str, Any]) -> list[Any]:
    """An Ollama chat answer as its streamed parts (the last one has the counts)."""
    msg = full["message"]
    head = {"model": full["model"], "created_at": full["created_at"]}

    def part(**message: Any) -> dict[str, Any]:
        return {**head, "message": {"role": "assistant", "content": "", **message}, "done": False}

    out = [part(thinking=p) for p in _pieces(msg.get("thinking") or "")]
    out += [part(content=p) for p in _pieces(msg.get("content") or "")]
    if msg.get("tool_calls"):
        out.append(part(tool_calls=msg["tool_calls"]))
    last = {**full, "message": {"role": "assistant", "content": ""}}
    return [*out, last]


async def broken_stream() -> Any:
    """llama-cpp-python's stream of a failed request: 200, then the connection drops."""
    raise RuntimeError("Requested tokens exceed context window (simulated)")
    yield ""  # an async generator


def check_context(window: int, prompt_tokens: int, max_tokens: int | None) -> None:
    """llama-cpp-python's (and OpenAI's) answer to a request that does not fit."""
    asked = prompt_tokens + (max_tokens or 0)
    if asked > window:
        raise ApiError(
            400,
            openai_error(
                f"This model's maximum context length is {window} tokens. However, you "
                f"requested {asked} tokens ({prompt_tokens} in the messages, {max_tokens or 0} "
                "in the completion). Please reduce the length of the messages or completion.",
                "invalid_request_error",
                "context_length_exceeded",
                "messages",
            ),
        )
