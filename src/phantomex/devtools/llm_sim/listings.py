"""The simulator's model listings (Ollama tags and ps, OpenAI models)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from phantomex.devtools.llm_sim.protocol import local_iso, shaped, template
from phantomex.devtools.llm_sim.state import SimModel, SimState


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def details(model: SimModel) -> dict[str, Any]:
    """A model's ``details`` object as Ollama lists it."""
    tmpl = template("ollama_tags.json")["models"][0]["details"]
    family = re.split(r"[\d:.\-]", model.name, maxsplit=1)[0] or "llama"
    params = (model.size_bytes or 0) / 0.6 / 1e9
    return shaped(
        tmpl,
        {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": f"{params:.1f}B",
            "quantization_level": "Q4_K_M",
        },
    )


def tags(state: SimState) -> dict[str, Any]:
    """Ollama's ``/api/tags``: every model the simulator serves."""
    tmpl = template("ollama_tags.json")["models"][0]
    modified = local_iso(state.started_at)
    return {
        "models": [
            shaped(
                tmpl,
                {
                    "name": m.name,
                    "model": m.name,
                    "modified_at": modified,
                    "size": m.size_bytes,
                    "digest": _digest(m.name),
                    "details": details(m),
                },
            )
            for m in state.models.values()
        ]
    }


def ps(state: SimState) -> dict[str, Any]:
    """Ollama's ``/api/ps``: the models loaded now."""
    state._expire()
    tmpl = template("ollama_ps.json")["models"][0]
    out = []
    for name, entry in sorted(state.loaded.items()):
        m = state.models[name]
        out.append(
            shaped(
                tmpl,
                {
                    "name": name,
                    "model": name,
                    "size": m.size_bytes,
                    "digest": _digest(name),
                    "details": details(m),
                    "expires_at": local_iso(entry.expires),
                    "size_vram": m.size_bytes,
                },
            )
        )
    return {"models": out}


def openai_models(state: SimState) -> dict[str, Any]:
    """OpenAI's ``/v1/models``."""
    tmpl = template("openai_models.json")
    item = tmpl["data"][0]
    created = int(state.started_at)
    return shaped(
        tmpl,
        {
            "object": "list",
            "data": [
                shaped(
                    item,
                    {
                        "id": m.name,
                        "object": "model",
                        "created": created,
                        "owned_by": "library",
                        "shutdown_date": None,
                    },
                )
                for m in state.models.values()
            ],
        },
    )
