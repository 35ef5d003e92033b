"""LLM endpoints: the configured servers, their models, and the full record of a decision."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request

from phantomex.api.routes import K
from phantomex.api.schemas.llm import (
    ConnectionTest,
    DecisionDetail,
    EndpointDeleted,
    EndpointLoaded,
    EndpointModels,
    EndpointView,
)
from phantomex.api.schemas.wire import RENDER
from phantomex.brains.llm.clients import LLMClient, test_connection
from phantomex.brains.llm.types import EndpointConfig, LLMError
from phantomex.domain.inputs import Ident
from phantomex.kernel.llm_endpoints import save_endpoint
from phantomex.kernel.runtime import KernelError, NotFound
from phantomex.serialize import jsonable

router = APIRouter(tags=["llm"], default_response_class=RENDER)
Json = dict[str, Any]


def _runtime(k: K, name: str | None = None) -> Any:
    if k.llm is None:
        raise KernelError("no LLM runtime", code="not_found")
    if name is not None and name not in k.llm.endpoints:
        raise NotFound("LLM endpoint", name)
    return k.llm


@router.get("/api/llm/endpoints", response_model=list[EndpointView])
def endpoints(k: K) -> list[Json]:
    """Configured endpoints; API keys are never returned (only whether one is set)."""
    llm = _runtime(k)
    return [e.public() for e in llm.endpoints.values()]


@router.post("/api/llm/endpoints", status_code=201, response_model=EndpointView)
async def add_endpoint(body: EndpointConfig, k: K, request: Request) -> Json:
    """Add an endpoint; its API key is stored encrypted and never returned."""
    llm = _runtime(k)
    async with k.lock:
        if body.name in llm.endpoints:
            raise KernelError(f"LLM endpoint {body.name!r} exists", field="name", code="conflict")
        llm.add_endpoint(body)
        with k.unit():
            save_endpoint(k.store, request.app.state.secrets, put=body)
        skipped = k.problems.find("llm_endpoint", body.name)
        if skipped is not None:  # a stored entry that could not be used is replaced
            k.problems.remove(skipped)
    return body.public()


@router.delete("/api/llm/endpoints/{name}", response_model=EndpointDeleted)
async def remove_endpoint(name: Ident, k: K, request: Request) -> Json:
    """Remove an endpoint added through the API, or a stored one that could not be loaded."""
    async with k.lock:
        skipped = k.problems.find("llm_endpoint", name)
        if skipped is not None and (k.llm is None or name not in k.llm.endpoints):
            with k.unit():
                save_endpoint(k.store, request.app.state.secrets, drop=name)
            k.problems.remove(skipped)
            return {"deleted": name}
    llm = _runtime(k, name)
    async with k.lock:
        if name in k.llm_static:
            raise KernelError(
                f"{name} is configured in the settings file; remove it there",
                field="name",
                code="conflict",
            )
        users = [a.name for a in k.agents.values() if a.spec.params.get("endpoint") == name]
        if users:
            raise KernelError(
                f"agents use {name}: {', '.join(users)}", field="name", code="conflict"
            )
        await llm.remove_endpoint(name)
        with k.unit():
            save_endpoint(k.store, request.app.state.secrets, drop=name)
    return {"deleted": name}


async def _ask(k: K, name: str, call: Callable[[LLMClient], Awaitable[Any]]) -> Any:
    """One read from a configured endpoint's server; a failure is a 409 naming the endpoint."""
    client = _runtime(k, name).client(name)
    try:
        return await call(client)
    except LLMError as exc:
        raise KernelError(f"{name}: {exc}", code="conflict") from exc


@router.get("/api/llm/endpoints/{name}/models", response_model=EndpointModels)
async def models(name: Ident, k: K) -> Json:
    return {"endpoint": name, "models": jsonable(await _ask(k, name, lambda c: c.list_models()))}


@router.get("/api/llm/endpoints/{name}/loaded", response_model=EndpointLoaded)
async def loaded(name: Ident, k: K) -> Json:
    return {"endpoint": name, "loaded": jsonable(await _ask(k, name, lambda c: c.loaded_models()))}


@router.post("/api/llm/endpoints/{name}/test", response_model=ConnectionTest)
async def test(name: Ident, k: K) -> Json:
    llm = _runtime(k, name)
    return jsonable(await test_connection(llm.endpoint(name)))


@router.get(
    "/api/agents/{agent_id}/decisions/{decision_id}",
    tags=["decisions"],
    response_model=DecisionDetail,
)
def decision_detail(agent_id: Ident, decision_id: Ident, k: K) -> Json:
    """A decision with its risk checks and, for LLM agents, every model call behind it."""
    rec = k.store.get_decision(decision_id)
    if rec is None or rec.agent_id != agent_id:
        raise NotFound("decision", decision_id)
    return {**jsonable(rec), "llm_calls": jsonable(k.store.llm_calls(decision_id))}
