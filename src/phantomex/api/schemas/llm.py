"""LLM endpoints (``/api/llm/*``) and a decision's full record with its model calls (the
service's read model, :class:`~phantomex.service.records.DecisionDetail`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from phantomex.api.schemas.wire import RESPONSE
from phantomex.service.records import DecisionDetail, LLMCall

__all__ = [
    "ConnectionFailed",
    "ConnectionOk",
    "ConnectionTest",
    "DecisionDetail",
    "EndpointDeleted",
    "EndpointLoaded",
    "EndpointModels",
    "EndpointView",
    "LLMCall",
    "LoadedEntry",
    "ModelEntry",
]


class EndpointView(BaseModel):
    """A configured LLM server; its API key is never shown."""

    model_config = RESPONSE

    name: str
    kind: Literal["ollama", "openai"]
    base_url: str
    timeout_seconds: float
    max_concurrency: int
    keep_alive: str = Field(description="unload, keep or group.")
    price_per_1k_input: str | None = Field(description="A decimal as text.")
    price_per_1k_output: str | None = Field(description="A decimal as text.")
    context_window: int | None
    has_api_key: bool


class EndpointDeleted(BaseModel):
    model_config = RESPONSE

    deleted: str


class ModelEntry(BaseModel):
    model_config = RESPONSE

    name: str
    size_bytes: int | None
    details: dict[str, Any]


class EndpointModels(BaseModel):
    model_config = RESPONSE

    endpoint: str
    models: list[ModelEntry]


class LoadedEntry(BaseModel):
    model_config = RESPONSE

    name: str
    size_vram_bytes: int | None
    expires_at: str | None


class EndpointLoaded(BaseModel):
    model_config = RESPONSE

    endpoint: str
    loaded: list[LoadedEntry]


class ConnectionOk(BaseModel):
    model_config = RESPONSE

    ok: Literal[True]
    endpoint: str
    kind: str
    latency_seconds: float
    models: int = Field(description="How many models the server lists.")
    model_names: list[str]
    error: None


class ConnectionFailed(BaseModel):
    model_config = RESPONSE

    ok: Literal[False]
    endpoint: str
    kind: str
    latency_seconds: float
    error: str
    error_kind: str = Field(description="timeout, connection, http, rate_limit or bad_response.")
    status: int | None = Field(description="The HTTP status, if the server answered.")


ConnectionTest = ConnectionOk | ConnectionFailed
