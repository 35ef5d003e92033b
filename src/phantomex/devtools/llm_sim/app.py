"""The simulator as a FastAPI app: the Ollama, OpenAI and ``/sim`` control routes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from phantomex.devtools.llm_sim import behaviour, listings
from phantomex.devtools.llm_sim.connection import CaptureConnection
from phantomex.devtools.llm_sim.handlers import Handlers
from phantomex.devtools.llm_sim.protocol import (
    OLLAMA_VERSION,
    ApiError,
    ollama_error,
)
from phantomex.devtools.llm_sim.state import (
    REQUEST_LOG,
    SimState,
)


def create_app(state: SimState | None = None, **config: Any) -> FastAPI:
    """The simulator as an ASGI app (``config``: :class:`SimState` arguments)."""
    st = state if state is not None else SimState(**config)
    sim = Handlers(st)
    app = FastAPI(title="PhantomEx LLM simulator", docs_url=None, redoc_url=None)
    app.add_middleware(CaptureConnection)
    app.state.sim = st

    @app.get("/")
    async def root() -> Response:
        return PlainTextResponse("Ollama is running")

    @app.get("/api/version")
    async def version() -> dict[str, str]:
        return {"version": OLLAMA_VERSION}

    @app.get("/api/tags")
    async def tags() -> dict[str, Any]:
        return listings.tags(sim.s)

    @app.get("/api/ps")
    async def ps() -> dict[str, Any]:
        return listings.ps(sim.s)

    @app.post("/api/chat")
    async def ollama_chat(request: Request) -> Response:
        return await sim.chat("ollama", request, "chat")

    @app.post("/api/show")
    async def ollama_show(request: Request) -> Response:
        body = await request.json()
        sim.record(request, body)
        model = st.resolve(str(body.get("model") or body.get("name") or ""))
        if model is None:
            return JSONResponse(ollama_error("model not found"), status_code=404)
        info: dict[str, Any] = {"general.architecture": "llama"}
        if model.context_window is not None:
            info["llama.context_length"] = model.context_window
        return JSONResponse(
            {"modelfile": "", "parameters": "", "template": "", "details": listings.details(model),
             "model_info": info, "capabilities": ["completion", "tools"]}
        )  # fmt: skip

    @app.post("/extras/tokenize/count")
    async def tokenize_count(request: Request) -> Response:
        body = await request.json()
        sim.record(request, body)
        return JSONResponse({"count": behaviour.estimate_tokens(str(body.get("input") or ""))})

    @app.get("/props")
    async def props() -> Response:
        windows = [
            m.context_window
            for m in st.models.values()
            if m.context_window and m.flavour == "standard"
        ]
        if not windows:  # llama-cpp-python has no /props; llama-server has
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return JSONResponse({"default_generation_settings": {"n_ctx": min(windows)}})

    @app.post("/api/generate")
    async def ollama_generate(request: Request) -> Response:
        return await sim.chat("ollama", request, "generate")

    @app.get("/v1/models")
    async def openai_models(request: Request) -> Response:
        try:
            sim.check_auth("openai", request)
        except ApiError as err:
            return sim.error_response("openai", err)
        return JSONResponse(listings.openai_models(sim.s))

    @app.post("/v1/chat/completions")
    async def openai_chat(request: Request) -> Response:
        return await sim.chat("openai", request, "chat")

    @app.get("/sim/stats")
    async def stats() -> dict[str, Any]:
        return st.stats()

    @app.post("/sim/reset")
    async def reset() -> dict[str, Any]:
        st.reset()
        return st.stats()

    @app.post("/sim/script")
    async def script(request: Request, model: str | None = None) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "invalid JSON"}, status_code=400)
        items = body
        if isinstance(body, dict):
            model = body.get("model", model)
            items = body.get("items", [])
        if not isinstance(model, str) or not isinstance(items, list):
            return JSONResponse(
                {"error": 'send {"model": ..., "items": [...]} or a list with ?model='},
                status_code=400,
            )
        try:
            st.script(model, items)
        except KeyError:
            return JSONResponse({"error": f"model '{model}' not found"}, status_code=404)
        return JSONResponse({"model": model, "pending": st.stats()["scripts_pending"]})

    @app.post("/sim/config")
    async def configure(request: Request) -> Response:
        try:
            body = await request.json()
            st.configure(**body)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(st.config())

    @app.get("/sim/requests")
    async def requests_log(path: str | None = None, limit: int = REQUEST_LOG) -> list[Any]:
        rows = [r for r in st.log if path is None or r["path"] == path]
        return rows[-limit:] if limit > 0 else []

    return app
