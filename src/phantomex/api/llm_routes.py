"""LLM endpoints: the configured servers, their models, and the full record of a decision."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import SecretStr

from phantomex.api.routes import K
from phantomex.brains.llm.clients import LLMClient, test_connection
from phantomex.brains.llm.types import EndpointConfig, LLMError
from phantomex.kernel.runtime import KernelError, NotFound
from phantomex.secrets import SecretBox
from phantomex.serialize import jsonable
from phantomex.store.repo import Store

router = APIRouter(tags=["llm"])
Json = dict[str, Any]
SAVED_KEY = "llm_endpoints"


def load_saved(store: Store, box: SecretBox) -> list[EndpointConfig]:
    """Endpoints added through the API (their API keys decrypted)."""
    saved = (store.get_state(SAVED_KEY) or {}).get("endpoints", [])
    out = []
    for data in saved:
        data = dict(data)
        token = data.pop("api_key_encrypted", None)
        data.pop("has_api_key", None)
        out.append(EndpointConfig(**data, api_key=SecretStr(box.decrypt(token)) if token else None))
    return out


def _save(k: Any, box: SecretBox) -> None:
    entries = []
    for name in sorted(k.llm.endpoints):
        endpoint = k.llm.endpoints[name]
        if name in k.llm_static:
            continue
        data = endpoint.public()
        data.pop("has_api_key")
        if endpoint.api_key is not None:
            data["api_key_encrypted"] = box.encrypt(endpoint.api_key.get_secret_value())
        entries.append(data)
    k.store.set_state(SAVED_KEY, {"endpoints": entries})


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


@router.post("/api/llm/endpoints", status_code=201)
async def add_endpoint(body: EndpointConfig, k: K, request: Request) -> Json:
    """Add an endpoint; its API key is stored encrypted and never returned."""
    llm = _runtime(k)
    async with k.lock:
        if body.name in llm.endpoints:
            raise KernelError(f"LLM endpoint {body.name!r} exists", field="name", code="conflict")
        llm.add_endpoint(body)
        with k.unit():
            _save(k, request.app.state.secrets)
    return body.public()


@router.delete("/api/llm/endpoints/{name}")
async def remove_endpoint(name: str, k: K, request: Request) -> Json:
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
            _save(k, request.app.state.secrets)
    return {"deleted": name}


async def _ask(k: K, name: str, call: Callable[[LLMClient], Awaitable[Any]]) -> Any:
    """One read from a configured endpoint's server; a failure is a 409 naming the endpoint."""
    client = _runtime(k, name).client(name)
    try:
        return await call(client)
    except LLMError as exc:
        raise KernelError(f"{name}: {exc}", code="conflict") from exc


@router.get("/api/llm/endpoints/{name}/models")
async def models(name: str, k: K) -> Json:
    return {"endpoint": name, "models": jsonable(await _ask(k, name, lambda c: c.list_models()))}


@router.get("/api/llm/endpoints/{name}/loaded")
async def loaded(name: str, k: K) -> Json:
    return {"endpoint": name, "loaded": jsonable(await _ask(k, name, lambda c: c.loaded_models()))}


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
