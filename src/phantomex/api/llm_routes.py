"""LLM endpoints: the configured servers, their models, and the full record of a decision."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from phantomex.api.routes import K
from phantomex.brains.llm.clients import test_connection
from phantomex.brains.llm.types import LLMError
from phantomex.kernel.runtime import KernelError, NotFound
from phantomex.serialize import jsonable

router = APIRouter(tags=["llm"])
Json = dict[str, Any]


def _runtime(k: K, name: str | None = None) -> Any:
    if k.llm is None:
        raise KernelError("no LLM runtime", code="not_found")
    if name is not None and name not in k.llm.endpoints:
        raise NotFound("LLM endpoint", name)
    return k.llm


@router.get("/api/llm/endpoints")
def endpoints(k: K) -> list[Json]:
    """Configured endpoints; API keys are never returned (only whether one is set)."""
    llm = _runtime(k)
    return [e.public() for e in llm.endpoints.values()]


@router.get("/api/llm/endpoints/{name}/models")
async def models(name: str, k: K) -> Json:
    llm = _runtime(k, name)
    try:
        found = await llm.client(name).list_models()
    except LLMError as exc:
        raise KernelError(f"{name}: {exc}", code="conflict") from exc
    return {"endpoint": name, "models": jsonable(found)}


@router.get("/api/llm/endpoints/{name}/loaded")
async def loaded(name: str, k: K) -> Json:
    llm = _runtime(k, name)
    try:
        found = await llm.client(name).loaded_models()
    except LLMError as exc:
        raise KernelError(f"{name}: {exc}", code="conflict") from exc
    return {"endpoint": name, "loaded": jsonable(found)}


@router.post("/api/llm/endpoints/{name}/test")
async def test(name: str, k: K) -> Json:
    llm = _runtime(k, name)
    return jsonable(await test_connection(llm.endpoint(name)))


@router.get("/api/agents/{agent_id}/decisions/{decision_id}", tags=["decisions"])
def decision_detail(agent_id: str, decision_id: str, k: K) -> Json:
    """A decision with its risk checks and, for LLM agents, every model call behind it."""
    rec = k.store.get_decision(decision_id)
    if rec is None or rec.agent_id != agent_id:
        raise NotFound("decision", decision_id)
    return {**jsonable(rec), "llm_calls": jsonable(k.store.llm_calls(decision_id))}
