"""The kernel's events, one class per type. Each carries what happened; :meth:`payload` is the
JSON body followers receive (the WebSocket hub, notifications, metrics), unchanged on the wire.
The bus builds a payload only when someone follows the event's type (:meth:`EventBus.emit`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from phantomex.domain.decision import DecisionRecord
from phantomex.domain.direct_init import direct_init
from phantomex.domain.models import Fill
from phantomex.serialize import jsonable


class KernelEvent(Protocol):
    """An event the kernel publishes: its wire ``type`` and its JSON ``payload()``."""

    type: ClassVar[str]

    def payload(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class PricesUpdated:
    """The latest accepted price of each symbol (``Kernel.price_list`` rows)."""

    type: ClassVar[str] = "price"
    prices: list[dict[str, Any]]

    def payload(self) -> dict[str, Any]:
        return {"prices": self.prices}


@direct_init  # built on every trade (followed or not)
@dataclass(frozen=True, slots=True)
class TradeMade:
    """A fill applied to an agent's wallet, with the P&L it realized (a sell's)."""

    type: ClassVar[str] = "trade"
    fill: Fill
    agent_name: str | None
    realized: Decimal | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "trade": jsonable(self.fill) | {"realized_pnl": jsonable(self.realized)},
            "agent_name": self.agent_name,
        }


@direct_init  # built on every trade (followed or not)
@dataclass(frozen=True, slots=True)
class DecisionChanged:
    """A decision recorded or resolved (held, rejected, executed, expired)."""

    type: ClassVar[str] = "decision"
    decision: DecisionRecord

    def payload(self) -> dict[str, Any]:
        return {"decision": jsonable(self.decision)}


@dataclass(frozen=True, slots=True)
class ApprovalChanged:
    """A step of an approval: requested, waiting, approved, rejected or expired."""

    type: ClassVar[str] = "approval"
    event: str
    decision: DecisionRecord

    def payload(self) -> dict[str, Any]:
        return {"event": self.event, "decision": jsonable(self.decision)}


@dataclass(frozen=True, slots=True)
class AgentUpdated:
    """An agent as the dashboard shows it, after any change."""

    type: ClassVar[str] = "agent"
    agent: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return {"event": "updated", "agent": self.agent}


@dataclass(frozen=True, slots=True)
class AgentDeleted:
    type: ClassVar[str] = "agent"
    agent_id: str

    def payload(self) -> dict[str, Any]:
        return {"event": "deleted", "agent_id": self.agent_id}


@dataclass(frozen=True, slots=True)
class RiskRaised:
    """A risk event: a rejection, a forced exit, a limit, the kill switch, a suspect price."""

    type: ClassVar[str] = "risk"
    agent_id: str | None
    kind: str
    symbol: str | None
    detail: str

    def payload(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "kind": self.kind,
            "symbol": self.symbol,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class ErrorRaised:
    """A failing tick (no agent) or a failing brain (its agent)."""

    type: ClassVar[str] = "error"
    message: str
    agent_id: str | None = None

    def payload(self) -> dict[str, Any]:
        if self.agent_id is None:
            return {"message": self.message}
        return {"agent_id": self.agent_id, "message": self.message}


@dataclass(frozen=True, slots=True)
class LLMCalled:
    """The model calls behind one decision (summaries)."""

    type: ClassVar[str] = "llm"
    agent_id: str
    calls: list[dict[str, Any]]

    def payload(self) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "calls": self.calls}
