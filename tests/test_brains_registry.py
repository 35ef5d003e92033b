"""The strategy registry: schemas for the API and the brain factory."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from phantomex.brains.registry import (
    STRATEGIES,
    UnknownStrategyError,
    create_brain,
    strategy_names,
    strategy_schemas,
)
from phantomex.brains.rules import MomentumBrain, RsiBrain, SpikeFadeBrain, TrainOfTradeBrain


def test_the_four_rule_strategies_are_registered() -> None:
    assert {
        "rsi": RsiBrain,
        "momentum": MomentumBrain,
        "spike_fade": SpikeFadeBrain,
        "train_of_trade": TrainOfTradeBrain,
    } == STRATEGIES


def test_strategy_schemas_describe_every_parameter() -> None:
    schemas = strategy_schemas()
    names = ["rsi", "momentum", "spike_fade", "train_of_trade", "sma_cross", "ema_cross", "llm"]
    assert [s["name"] for s in schemas] == names == strategy_names()
    json.dumps(schemas, allow_nan=False)  # served as-is by GET /api/strategies
    llm = schemas[-1]
    assert set(llm["schema"]["required"]) == {"endpoint", "model"}
    assert llm["schema"]["additionalProperties"] is False
    for entry in schemas[:-1]:
        assert entry["description"] and entry["title"]
        properties = entry["schema"]["properties"]
        assert set(properties) == set(entry["defaults"])
        for name, prop in properties.items():
            assert prop.get("description"), f"{entry['name']}.{name} has no description"
            assert prop["default"] == entry["defaults"][name]
        assert entry["schema"]["additionalProperties"] is False
    rsi = schemas[0]
    assert rsi["defaults"] == {"period": 14, "oversold": 30.0, "overbought": 70.0}
    assert rsi["schema"]["properties"]["period"]["minimum"] == 2
    momentum = schemas[1]
    assert momentum["schema"]["properties"]["ma"]["enum"] == ["sma", "ema"]
    assert schemas[2]["defaults"]["windows"] == [10, 30, 60]


def test_create_brain_with_defaults_and_overrides() -> None:
    brain = create_brain("rsi", {})
    assert isinstance(brain, RsiBrain)
    assert brain.kind == "rsi"
    assert brain.describe() == "RSI(14) mean reversion: buy < 30, sell > 70"
    brain = create_brain("momentum", {"fast": 5, "slow": 20, "ma": "ema"})
    assert isinstance(brain, MomentumBrain)
    assert (brain.params.fast, brain.params.slow, brain.params.ma) == (5, 20, "ema")
    assert isinstance(create_brain("spike_fade"), SpikeFadeBrain)
    assert isinstance(create_brain("train_of_trade", {"take_profit_pct": 3}), TrainOfTradeBrain)


def test_unknown_strategy() -> None:
    with pytest.raises(UnknownStrategyError, match="unknown strategy 'macd'") as info:
        create_brain("macd", {})
    assert isinstance(info.value, ValueError)
    assert "rsi" in str(info.value)  # lists the known ones


def test_bad_and_unknown_params_are_rejected() -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 2"):
        create_brain("rsi", {"period": 0})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        create_brain("rsi", {"perid": 14})
    with pytest.raises(ValidationError, match="must be below slow"):
        create_brain("momentum", {"fast": 50})


@pytest.mark.parametrize(("alias", "ma"), [("sma_cross", "sma"), ("ema_cross", "ema")])
def test_an_alias_is_a_strategy_of_its_own_with_its_fixed_parameter_hidden(
    alias: str, ma: str
) -> None:
    entry = next(s for s in strategy_schemas() if s["name"] == alias)
    assert entry["title"] and "momentum" in entry["description"]
    assert set(entry["schema"]["properties"]) == {"fast", "slow"} == set(entry["defaults"])
    brain = create_brain(alias, {"fast": 5, "slow": 20})
    assert isinstance(brain, MomentumBrain)
    assert (brain.params.fast, brain.params.slow, brain.params.ma) == (5, 20, ma)
    assert brain.describe() == f"{ma.upper()}(5/20) crossover momentum"
    momentum = next(s for s in strategy_schemas() if s["name"] == "momentum")
    assert "ma" in momentum["schema"]["properties"]  # the original schema is left alone


def test_unknown_strategy_lists_every_name() -> None:
    with pytest.raises(UnknownStrategyError) as info:
        create_brain("sma", {})
    assert all(name in str(info.value) for name in strategy_names())
