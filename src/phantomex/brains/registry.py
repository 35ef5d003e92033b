"""The one catalogue of strategies: every name an agent's brain may have (rule strategies, their
aliases such as ``sma_cross``, and ``llm``), their schemas for ``GET /api/strategies`` (the
dashboard, ``phantomex strategies``) and the factory that the kernel, sessions and backtests
build brains with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from phantomex.brains.base import Brain
from phantomex.brains.rules import MomentumBrain, RsiBrain, SpikeFadeBrain, TrainOfTradeBrain
from phantomex.brains.rules._common import RuleBrain

if TYPE_CHECKING:
    from phantomex.brains.llm.runtime import LLMRuntime

#: The LLM brain's strategy name (its module, and the LLM client stack, load only to build or
#: describe one).
LLM_KIND = "llm"


class UnknownStrategyError(ValueError):
    """No strategy is registered under that name."""


class UnknownEndpointError(ValueError):
    """An LLM brain names an endpoint that is not configured."""


STRATEGIES: dict[str, type[RuleBrain]] = {
    cls.kind: cls for cls in (RsiBrain, MomentumBrain, SpikeFadeBrain, TrainOfTradeBrain)
}


@dataclass(frozen=True, slots=True)
class Alias:
    """A registered strategy with some parameters fixed, under a name of its own."""

    brain: str
    title: str
    fixed: Mapping[str, Any] = field(default_factory=dict)


#: Strategy names that are a registered strategy with some parameters fixed.
ALIASES: dict[str, Alias] = {
    "sma_cross": Alias("momentum", "Simple moving-average crossover", {"ma": "sma"}),
    "ema_cross": Alias("momentum", "Exponential moving-average crossover", {"ma": "ema"}),
}


def resolve_strategy(
    name: str, params: Mapping[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """The registered strategy and parameters behind ``name`` (``sma_cross`` is ``momentum``
    with ``ma = sma``; explicit parameters win over the alias's)."""
    alias = ALIASES.get(name)
    if alias is None:
        return name, dict(params or {})
    return alias.brain, {**alias.fixed, **dict(params or {})}


def _rule_schema(name: str, cls: type[RuleBrain], alias: Alias | None = None) -> dict[str, Any]:
    schema = cls.Params.model_json_schema()
    defaults = cls.Params().model_dump(mode="json")
    title, description = cls.title, cls.description
    if alias is not None:  # the fixed parameters are not the user's to choose
        fixed = ", ".join(f"{k} = {v}" for k, v in alias.fixed.items())
        title, description = alias.title, f"{description} ({alias.brain} with {fixed}.)"
        schema["properties"] = {
            k: v for k, v in schema["properties"].items() if k not in alias.fixed
        }
        if "required" in schema:
            schema["required"] = [k for k in schema["required"] if k not in alias.fixed]
        defaults = {k: v for k, v in defaults.items() if k not in alias.fixed}
    return {
        "name": name,
        "title": title,
        "description": description,
        "schema": schema,
        "defaults": defaults,
    }


def strategy_schemas() -> list[dict[str, Any]]:
    """Every strategy for ``GET /api/strategies``: name, title, description, the JSON schema of
    its parameters and their defaults. Rule strategies, then their aliases, then ``llm``."""
    from phantomex.brains.llm.brain import LLMBrain
    from phantomex.brains.llm.params import LLMParams

    return [
        *(_rule_schema(kind, cls) for kind, cls in STRATEGIES.items()),
        *(_rule_schema(name, STRATEGIES[a.brain], a) for name, a in ALIASES.items()),
        {
            "name": LLMBrain.kind,
            "title": LLMBrain.title,
            "description": LLMBrain.description,
            "schema": LLMParams.model_json_schema(),
            "defaults": {},
        },
    ]


def strategy_names() -> list[str]:
    """Every name an agent's brain may have, in the order of :func:`strategy_schemas`."""
    return [*STRATEGIES, *ALIASES, LLM_KIND]


def create_brain(
    kind: str, params: Mapping[str, Any] | None = None, *, llm: LLMRuntime | None = None
) -> Brain:
    """A brain of strategy ``kind`` with validated ``params`` (missing ones take their defaults).

    ``llm`` is the server's LLM runtime, needed by the ``llm`` brain. Raises
    :class:`UnknownStrategyError` for an unknown strategy, :class:`UnknownEndpointError` for an
    LLM brain on an endpoint that isn't configured and :class:`pydantic.ValidationError` for bad
    or unknown parameters. An alias (``sma_cross``) builds its registered strategy."""
    kind, params = resolve_strategy(kind, params)
    if kind == LLM_KIND:
        from phantomex.brains.llm.brain import LLMBrain
        from phantomex.brains.llm.params import LLMParams

        llm_params = LLMParams.model_validate(dict(params or {}))
        if llm is None or llm_params.endpoint not in llm.endpoints:
            known = ", ".join(sorted(llm.endpoints)) if llm else ""
            raise UnknownEndpointError(
                f"unknown LLM endpoint {llm_params.endpoint!r} (configured: {known or 'none'})"
            )
        return LLMBrain(llm_params, llm)
    cls = STRATEGIES.get(kind)
    if cls is None:
        known = ", ".join(strategy_names())
        raise UnknownStrategyError(f"unknown strategy {kind!r} (known: {known})")
    validated = cls.Params.model_validate(dict(params or {}))
    brain: Brain = cls(validated)  # type: ignore[call-arg]
    return brain
