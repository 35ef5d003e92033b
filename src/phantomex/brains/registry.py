"""The catalogue of rule strategies: schemas for the UI and a factory for the kernel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from phantomex.brains.base import Brain
from phantomex.brains.llm.brain import LLMBrain, LLMParams
from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.brains.rules import MomentumBrain, RsiBrain, SpikeFadeBrain, TrainOfTradeBrain
from phantomex.brains.rules._common import RuleBrain


class UnknownStrategyError(ValueError):
    """No strategy is registered under that name."""


class UnknownEndpointError(ValueError):
    """An LLM brain names an endpoint that is not configured."""


STRATEGIES: dict[str, type[RuleBrain]] = {
    cls.kind: cls for cls in (RsiBrain, MomentumBrain, SpikeFadeBrain, TrainOfTradeBrain)
}


def strategy_schemas() -> list[dict[str, Any]]:
    """Every strategy for ``GET /api/strategies``: name, title, description, the JSON schema of
    its parameters and their defaults."""
    return [
        {
            "name": kind,
            "title": cls.title,
            "description": cls.description,
            "schema": cls.Params.model_json_schema(),
            "defaults": cls.Params().model_dump(mode="json"),
        }
        for kind, cls in STRATEGIES.items()
    ] + [
        {
            "name": LLMBrain.kind,
            "title": LLMBrain.title,
            "description": LLMBrain.description,
            "schema": LLMParams.model_json_schema(),
            "defaults": {},
        }
    ]


def create_brain(
    kind: str, params: Mapping[str, Any] | None = None, *, llm: LLMRuntime | None = None
) -> Brain:
    """A brain of strategy ``kind`` with validated ``params`` (missing ones take their defaults).

    ``llm`` is the server's LLM runtime, needed by the ``llm`` brain. Raises
    :class:`UnknownStrategyError` for an unknown strategy, :class:`UnknownEndpointError` for an
    LLM brain on an endpoint that isn't configured and :class:`pydantic.ValidationError` for bad
    or unknown parameters."""
    if kind == LLMBrain.kind:
        llm_params = LLMParams.model_validate(dict(params or {}))
        if llm is None or llm_params.endpoint not in llm.endpoints:
            known = ", ".join(sorted(llm.endpoints)) if llm else ""
            raise UnknownEndpointError(
                f"unknown LLM endpoint {llm_params.endpoint!r} (configured: {known or 'none'})"
            )
        return LLMBrain(llm_params, llm)
    cls = STRATEGIES.get(kind)
    if cls is None:
        known = ", ".join(sorted(STRATEGIES))
        raise UnknownStrategyError(f"unknown strategy {kind!r} (known: {known})")
    validated = cls.Params.model_validate(dict(params or {}))
    brain: Brain = cls(validated)  # type: ignore[call-arg]
    return brain
