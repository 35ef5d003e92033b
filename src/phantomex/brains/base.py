"""The brain port: ``decide(context) -> Decision``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from phantomex.brains.indicators import BoolArray, FloatArray
from phantomex.domain.models import Decision, Snapshot, Wallet
from phantomex.market.base import HistoryView

V = TypeVar("V")


class LazyValues(MutableMapping[str, V]):
    """A mapping whose keys are known up front and whose values are computed on first read,
    once each (by ``compute(key)``): what a brain never reads costs nothing."""

    __slots__ = ("_compute", "_keys", "_values")

    def __init__(self, keys: Iterable[str], compute: Callable[[str], V]) -> None:
        self._keys = dict.fromkeys(keys)  # an ordered set
        self._compute = compute
        self._values: dict[str, V] = {}

    def __getitem__(self, key: str) -> V:
        values = self._values
        if key in values:
            return values[key]
        if key not in self._keys:
            raise KeyError(key)
        value = values[key] = self._compute(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` (computed if needed), or ``default`` (without the generic
        ``Mapping.get``'s exception round trip: a brain asks on every decision)."""
        values = self._values
        if key in values:
            return values[key]
        if key not in self._keys:
            return default
        value = values[key] = self._compute(key)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __setitem__(self, key: str, value: V) -> None:
        self._keys[key] = None
        self._values[key] = value

    def __delitem__(self, key: str) -> None:
        del self._keys[key]
        self._values.pop(key, None)

    def __repr__(self) -> str:
        return repr(dict(self))


@dataclass(slots=True)
class BrainContext:
    """What a brain may know when it decides. ``state`` is the brain's own memory: the kernel
    persists it with the agent, so it survives restarts (keep it JSON-serialisable)."""

    agent_id: str
    agent_name: str
    goal: str
    now: datetime
    symbols: list[str]
    prices: dict[str, Snapshot]
    history: HistoryView
    wallet: Wallet
    #: The largest buy per symbol that risk allows now (the kernel's is a :class:`LazyValues`).
    max_buy_quantity: MutableMapping[str, Decimal] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    recent_decisions: list[dict[str, Any]] = field(default_factory=list)  # slow brains only
    recent_trades: list[dict[str, Any]] = field(default_factory=list)  # slow brains only
    closed_trades: int = 0  # the agent's sells so far (slow brains only)
    #: Whether anything reads the decision's ``meta`` (the kernel's lean backtest reads none):
    #: a rule brain may then leave out the figures it only explains itself with.
    explain: bool = True

    def mark(self, symbol: str) -> Decimal | None:
        snap = self.prices.get(symbol)
        return snap.price if snap else None


class Brain(Protocol):
    """Anything that turns a context into a decision with a short, human-readable reasoning."""

    kind: ClassVar[str]

    async def decide(self, ctx: BrainContext) -> Decision: ...

    def describe(self) -> str:
        """One line for the UI: the strategy or model and its key parameters."""
        ...


# -- optional capabilities (the kernel asks with :func:`capable`) ---------------------------------
@runtime_checkable
class SlowBrain(Protocol):
    """A brain that waits on a network (an LLM): the kernel lets it decide in the background."""

    slow: ClassVar[bool]


@runtime_checkable
class TimedBrain(Protocol):
    """A brain with a decision deadline of its own (seconds), instead of the kernel's."""

    deadline_seconds: float


@runtime_checkable
class ModelBrain(Protocol):
    """A brain that calls a model: ``(endpoint, model)``, kept warm while it is due to call."""

    @property
    def llm_model(self) -> tuple[str, str]: ...


@runtime_checkable
class InstantBrain(Protocol):
    """A brain that decides without waiting on anything (rule brains): when ``instant``, the
    kernel calls ``decide_now`` directly, with no deadline to arm (it could never expire), and
    ``decide`` returns the same decision. It reads its context during ``decide_now`` only and
    never changes it: the kernel gives it the ledger's own wallet (never changed in place),
    not a copy."""

    instant: ClassVar[bool]

    def decide_now(self, ctx: BrainContext) -> Decision: ...


@runtime_checkable
class SignalBrain(Protocol):
    """A brain with vectorised signals: per bar, whether it may do anything but hold (flat or
    holding); None when it cannot say (event skipping then visits every tick)."""

    def may_act(self, closes: FloatArray, *, held: bool) -> BoolArray | None: ...


_CAPABLE: dict[tuple[type, type], bool] = {}
_INSTANT: dict[type, bool] = {}


def capable(brain: object, capability: type) -> bool:
    """Whether ``brain`` has ``capability`` (one of the protocols above). Decided once per class
    (a protocol check is slow and this is asked every tick): a brain class declares its
    capabilities for all its instances."""
    key = (type(brain), capability)
    known = _CAPABLE.get(key)
    if known is None:
        known = _CAPABLE[key] = isinstance(brain, capability)
    return known


def instant_brain(brain: object) -> InstantBrain | None:
    """``brain`` when it decides at once (an :class:`InstantBrain` whose class says
    ``instant``), else None. Decided once per class, as :func:`capable` is."""
    cls = type(brain)
    known = _INSTANT.get(cls)
    if known is None:
        known = capable(brain, InstantBrain) and bool(getattr(cls, "instant", False))
        _INSTANT[cls] = known
    return brain if known else None  # type: ignore[return-value]
