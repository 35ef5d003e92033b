"""JSON for the API and the WebSocket: every kind of value the kernel publishes."""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from phantomex.domain.models import Action
from phantomex.serialize import jsonable


class Level(enum.IntEnum):
    LOW = 1


class Colour(enum.StrEnum):
    RED = "red"


@dataclass
class Inner:
    when: datetime
    amount: Decimal


@dataclass
class Outer:
    name: str
    inner: Inner
    tags: list[Any] = field(default_factory=list)
    meta: dict[Any, Any] = field(default_factory=dict)


def test_jsonable_converts_money_times_enums_containers_and_dataclasses() -> None:
    t = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    value = Outer(
        name="x",
        inner=Inner(t, Decimal("1E-8")),
        tags=[1, 2.5, True, None, Decimal("10.50"), ("a", Level.LOW), {Colour.RED}],
        meta={
            1: Action.BUY,
            "nested": {"deep": [Decimal("-0"), {"t": t.astimezone(UTC)}]},
            "ordered": OrderedDict(b=Decimal(2)),
            "plain": {"a": 1, "b": "s", "c": None, "d": False},
        },
    )
    assert jsonable(value) == {
        "name": "x",
        "inner": {"when": "2024-01-02T01:04:05Z", "amount": "0.00000001"},
        "tags": [1, 2.5, True, None, "10.50", ["a", 1], ["red"]],
        "meta": {
            "1": "buy",
            "nested": {"deep": ["-0", {"t": "2024-01-02T01:04:05Z"}]},
            "ordered": {"b": "2"},
            "plain": {"a": 1, "b": "s", "c": None, "d": False},
        },
    }
    out = jsonable(value)
    assert type(out["tags"][5][1]) is int  # an IntEnum becomes its plain value
    assert type(out["tags"][6][0]) is str
    plain = {"a": [1, 2]}
    copied = jsonable(plain)
    assert copied == plain and copied is not plain and copied["a"] is not plain["a"]
