"""LLM endpoints: the configured servers, their models, and the full record of a decision."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request

from phantomex.api.deps import Cmd, Qry
from phantomex.api.schemas.llm import (
    ConnectionTest,
    DecisionDetail,
    EndpointDeleted,
    EndpointLoaded,
    EndpointModels,
    EndpointView,
)
from phantomex.api.schemas.wire import RENDER
from phantomex.brains.llm.client_base import LLMClient
from phantomex.brains.llm.clients import test_connection
from phantomex.brains.llm.types import EndpointConfig, LLMError
from phantomex.domain.inputs import Ident
from phantomex.kernel.runtime import KernelError
from phantomex.serialize import jsonable

router = APIRouter(tags=["llm"], default_response_class=RENDER)
Json = dict[str, Any]


@router.get("/api/llm/endpoints", response_model=list[EndpointView])
def endpoints(q: Qry) -> list[Json]:
    """Configured endpoints; API keys are never returned (only whether one is set)."""
    return [e.public() for e in q.llm().endpoints.values()]


@router.post("/api/llm/endpoints", status_code=201, response_model=EndpointView)
async def add_endpoint(body: EndpointConfig, c: Cmd, request: Request) -> Json:
    """Add an endpoint; its API key is stored encrypted and never returned."""
    await c.add_llm_endpoint(body, request.app.state.secrets)
    return body.public()


@router.delete("/api/llm/endpoints/{name}", response_model=EndpointDeleted)
async def remove_endpoint(name: Ident, c: Cmd, request: Request) -> Json:
    """Remove an endpoint added through the API, or a stored one that could not be loaded."""
    await c.remove_llm_endpoint(name, request.app.state.secrets)
    return {"deleted": name}


async def _ask(q: Qry, name: str, call: Callable[[LLMClient], Awaitable[Any]]) -> Any:
    """One read from a configured endpoint's server; a failure is a 409 naming the endpoint."""
    client = q.llm(name).client(name)
    try:
        return await call(client)
    except LLMError as exc:
        raise KernelError(f"{name}: {exc}", code="conflict") from exc


@router.get("/api/llm/endpoints/{name}/models", response_model=EndpointModels)
async def models(name: Ident, q: Qry) -> Json:
    return {"endpoint": name, "models": jsonable(await _ask(q, name, lambda c: c.list_models()))}


@router.get("/api/llm/endpoints/{name}/loaded", response_model=EndpointLoaded)
async def loaded(name: Ident, q: Qry) -> Json:
    return {"endpoint": name, "loaded": jsonable(await _ask(q, name, lambda c: c.loaded_models()))}


@router.post("/api/llm/endpoints/{name}/test", response_model=ConnectionTest)
async def test(name: Ident, q: Qry) -> Json:
    return jsonable(await test_connection(q.llm(name).endpoint(name)))


@router.get(
    "/api/agents/{agent_id}/decisions/{decision_id}",
    tags=["decisions"],
    response_model=DecisionDetail,
)
def decision_detail(agent_id: Ident, decision_id: Ident, q: Qry) -> DecisionDetail:
    """A decision with its risk checks and, for LLM agents, every model call behind it."""
    return q.decision_detail(agent_id, decision_id)
