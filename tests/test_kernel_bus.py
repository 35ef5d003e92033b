"""Which event types the bus says are followed (:meth:`EventBus.wants`), as subscribers come and
go: an unfollowed type's payload is never built."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from phantomex.kernel.bus import Event, EventBus

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def test_wants_follows_subscribers_as_they_come_and_go() -> None:
    bus = EventBus()
    assert not bus.wants("trade")
    seen: list[Event] = []
    remove_errors = bus.subscribe(seen.append, types=("error",))
    assert bus.wants("error") and not bus.wants("trade")
    remove_all = bus.subscribe(seen.append)  # the same follower, now of every type
    assert bus.wants("trade") and bus.wants("error")
    remove_all()  # still subscribed once: its latest types (every one) stay
    assert bus.wants("trade")
    remove_errors()
    assert not bus.wants("trade") and not bus.wants("error")
    other: list[Event] = []
    bus.subscribe(other.append, types=("trade", "risk"))
    assert bus.wants("risk") and not bus.wants("error")


def test_an_unfollowed_payload_is_not_built() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append, types=("risk",))
    built: list[str] = []

    def payload(kind: str) -> dict[str, str]:
        built.append(kind)
        return {"kind": kind}

    bus.publish("trade", lambda: payload("trade"), WHEN)
    bus.publish("risk", lambda: payload("risk"), WHEN)
    assert built == ["risk"]
    assert [e.data for e in seen] == [{"kind": "risk"}]
    with pytest.raises(ValueError, match="unknown event type"):
        bus.publish("nonsense", {}, WHEN)
