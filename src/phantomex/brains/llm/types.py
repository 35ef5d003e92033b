"""Types shared by the LLM clients, the simulator and the LLM brain (no I/O here)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from phantomex.domain.inputs import HttpUrl, Name, Number


class StructuredMode(enum.StrEnum):
    """How a JSON answer is requested, strongest first."""

    SCHEMA = "json_schema"  # Ollama `format: <schema>`; OpenAI response_format json_schema
    JSON = "json_object"  # Ollama `format: "json"`; OpenAI response_format json_object
    PROMPT = "prompt"  # only the instructions in the prompt


class KeepAlive(enum.StrEnum):
    UNLOAD = "unload"  # keep_alive=0 after each call
    KEEP = "keep"  # stay loaded
    GROUP = "group"  # loaded while its agents are due again soon; unloaded for another model


class EndpointConfig(BaseModel):
    """A named LLM server. The API key is a secret: never returned by the API, never logged."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(max_length=64, pattern=r"^[\w.\-]+$")
    kind: Literal["ollama", "openai"]
    base_url: HttpUrl = Field(description="http(s)://host[:port][/path] of the server.")
    api_key: SecretStr | None = None
    timeout_seconds: float = Field(60.0, gt=0, le=3600)
    max_concurrency: int = Field(1, ge=1, le=256)
    keep_alive: KeepAlive = KeepAlive.GROUP
    price_per_1k_input: Number | None = Field(None, ge=0)
    price_per_1k_output: Number | None = Field(None, ge=0)
    context_window: int | None = Field(
        None,
        ge=256,
        le=10_000_000,
        description="The model's context in tokens (prompt + answer); learnt from the server "
        "where it says (Ollama /api/show, llama.cpp /props, an overflow error) if empty.",
    )

    def public(self) -> dict[str, Any]:
        """What the API may show: everything but the key (only whether one is set)."""
        data = self.model_dump(mode="json", exclude={"api_key"})
        data["has_api_key"] = self.api_key is not None
        return data


@dataclass(frozen=True, slots=True)
class ChatOptions:
    temperature: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    timeout_seconds: float | None = None  # overrides the endpoint's
    keep_alive: str | int | None = None  # passed to Ollama as is (e.g. 0, "5m")
    num_ctx: int | None = None  # the context window Ollama should load the model with


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A decoded tool call. OpenAI sends ``arguments`` as a JSON string, Ollama as an object;
    both end up here as a dict, or with ``arguments_error`` when the string doesn't parse."""

    name: str
    arguments: dict[str, Any]
    id: str | None = None
    arguments_error: str | None = None


@dataclass(slots=True)
class ChatResult:
    content: str
    mode: StructuredMode
    latency_seconds: float
    form: str | None = None  # the wire form of the request (forms.Form), when structured
    thinking: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tokens_in: int | None = None
    tokens_out: int | None = None
    finish_reason: str | None = None
    refusal: str | None = None
    load_seconds: float | None = None  # Ollama's load_duration, when it loaded the model
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    size_bytes: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoadedModel:
    name: str
    size_vram_bytes: int | None = None
    expires_at: str | None = None


class LLMError(Exception):
    """A failed call. ``kind``: timeout | connection | http | rate_limit | bad_response."""

    def __init__(self, kind: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
