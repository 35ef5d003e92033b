"""LLM endpoints (``/api/llm/*``) and a decision's full record with its model calls."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from phantomex.api.schemas.wire import RESPONSE, DecimalText, Timestamp


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


class LLMCall(BaseModel):
    """One call to a model behind a decision."""

    model_config = RESPONSE

    id: int
    decision_id: str
    agent_id: str
    time: Timestamp
    purpose: str = Field(description="decide, repair, tool, reflect or summary.")
    endpoint: str
    model: str
    mode: str | None
    messages: list[dict[str, Any]]
    raw_response: str | None
    thinking: str | None
    parsed: dict[str, Any] | None
    error: str | None
    latency_seconds: float | None
    tokens_in: int | None
    tokens_out: int | None
    cost: DecimalText | None
    cached: bool
    cache_key: str | None


class DecisionDetail(BaseModel):
    """A decision with its risk checks and, for LLM agents, every model call behind it."""

    model_config = RESPONSE

    id: str
    agent_id: str
    time: Timestamp
    source: str
    action: str
    status: str
    symbol: str | None
    quantity: DecimalText | None
    notional: DecimalText | None
    price: DecimalText | None
    reasoning: str
    confidence: float | None
    reason: str
    checks: list[dict[str, Any]]
    meta: dict[str, Any]
    expires_at: Timestamp | None
    resolved_at: Timestamp | None
    llm_calls: list[LLMCall]
