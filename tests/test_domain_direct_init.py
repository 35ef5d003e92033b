"""Frozen dataclasses with a direct ``__init__`` build the same objects as the dataclass's own,
and stay frozen."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from phantomex.domain.direct_init import direct_init
from phantomex.domain.models import Action, Decision, Fill, Order, OrderType, Side
from phantomex.risk.engine import Check

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Plain:
    a: int
    b: str = "b"
    c: list[int] = field(default_factory=list)


@direct_init
@dataclass(frozen=True, slots=True)
class Direct:
    a: int
    b: str = "b"
    c: list[int] = field(default_factory=list)


def _fields(obj: object) -> dict[str, object]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, "x"), {}), ((1,), {"c": [2]}), ((), {"a": 3, "b": "y", "c": [4]})],
)
def test_the_same_values_defaults_and_factories_as_the_dataclasses_own(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    plain, direct = Plain(*args, **kwargs), Direct(*args, **kwargs)  # type: ignore[arg-type]
    assert _fields(plain) == _fields(direct)
    assert repr(direct) == repr(plain).replace("Plain", "Direct")
    assert Direct(1).c is not Direct(1).c  # a fresh default per object


def test_arguments_are_checked_as_the_dataclasses_own_are() -> None:
    with pytest.raises(TypeError):
        Direct()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Direct(1, d=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Direct(1, a=2)  # type: ignore[misc]


def test_the_trade_objects_stay_frozen_values() -> None:
    order = Order("o1", "a1", "BTC", Side.BUY, Decimal("1.5"), "order:o1", whole=True)
    fill = Fill("a1", "BTC", Side.BUY, Decimal("1.5"), Decimal(100), Decimal("0.1"), T0, "k")
    check = Check("size", True, "buy 1.5 BTC within limits")
    decision = Decision(Action.BUY, "BTC", reasoning="why")
    for obj in (order, fill, check, decision):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, dataclasses.fields(obj)[1].name, "ETH")
        assert copy.deepcopy(obj) == obj and pickle.loads(pickle.dumps(obj)) == obj
        if obj is not decision:  # a decision's meta is a dict: no hash
            assert hash(obj) == hash(copy.copy(obj))
    assert order.type is OrderType.MARKET and order.limit_price is None and order.reason == ""
    assert dataclasses.replace(order, quantity=Decimal(2)).quantity == Decimal(2)
    assert fill.order_id is None and fill.notional == Decimal(150)
    assert check.to_json() == {"name": "size", "passed": True, "detail": check.detail}
    assert decision.meta == {} and decision.meta is not Decision(Action.HOLD).meta


def test_only_frozen_slotted_dataclasses_with_plain_fields() -> None:
    @dataclass(slots=True)
    class Mutable:
        a: int

    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(frozen=True, slots=True)
    class KeywordOnly:
        a: int = field(kw_only=True)

    for cls in (Mutable, NoSlots, KeywordOnly, int):
        with pytest.raises(TypeError):
            direct_init(cls)
