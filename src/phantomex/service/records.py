"""Read models of the history and of the kernel's state (besides the agent and price views of
:mod:`phantomex.kernel.views`): decisions, orders, trades, risk events, bars, the audit, the
kill switch. Each renders exactly as :func:`phantomex.serialize.jsonable` rendered the record
it is made from, so they serve as the REST API's response models unchanged on the wire."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import Bar, Order, OrderType, Side
from phantomex.kernel.views import AgentView, PositionView, PriceView, SuspectView, WalletView
from phantomex.ledger.reconcile import Mismatch
from phantomex.serialize import DecimalStr, IsoTime, JsonAny, jsonable

__all__ = [
    "AgentView",
    "AuditView",
    "BarView",
    "BarsView",
    "DecisionDetail",
    "DecisionView",
    "KillResult",
    "KillState",
    "LLMCall",
    "MismatchView",
    "OrderView",
    "Overview",
    "PositionView",
    "PriceView",
    "RiskEventView",
    "StateSnapshot",
    "SuspectView",
    "TradePage",
    "TradeView",
    "WalletView",
    "as_rows",
]

_FROM_RECORDS = ConfigDict(from_attributes=True)


class DecisionView(BaseModel):
    """A decision: what an agent (a person, or risk) decided, what became of it and why."""

    model_config = _FROM_RECORDS

    id: str
    agent_id: str
    time: IsoTime
    source: str = Field(description="brain, manual, or risk:<kind>.")
    action: str = Field(description="buy, sell or hold.")
    status: str = Field(description="A DecisionStatus: pending, executed, rejected, ...")
    symbol: str | None
    quantity: DecimalStr | None
    notional: DecimalStr | None
    price: DecimalStr | None
    reasoning: str
    confidence: float | None
    reason: str
    checks: list[dict[str, JsonAny]]
    meta: dict[str, JsonAny]
    expires_at: IsoTime | None
    resolved_at: IsoTime | None

    @classmethod
    def of(cls, rec: DecisionRecord) -> DecisionView:
        return cls.model_validate(rec)


class LLMCall(BaseModel):
    """One call to a model behind a decision (a row of the store's LLM audit trail)."""

    id: int
    decision_id: str
    agent_id: str
    time: IsoTime
    purpose: str = Field(description="decide, repair, tool, reflect or summary.")
    endpoint: str
    model: str
    mode: str | None
    messages: list[dict[str, JsonAny]]
    raw_response: str | None
    thinking: str | None
    parsed: dict[str, JsonAny] | None
    error: str | None
    latency_seconds: float | None
    tokens_in: int | None
    tokens_out: int | None
    cost: DecimalStr | None
    cached: bool
    cache_key: str | None


class DecisionDetail(DecisionView):
    """A decision with its risk checks and, for LLM agents, every model call behind it."""

    llm_calls: list[LLMCall]


class OrderView(BaseModel):
    """A resting limit or stop order (or one just cancelled)."""

    model_config = _FROM_RECORDS

    id: str
    agent_id: str
    symbol: str
    side: Side
    quantity: DecimalStr
    idempotency_key: str
    type: OrderType
    limit_price: DecimalStr | None
    stop_price: DecimalStr | None
    decision_id: str | None
    reason: str
    created_at: IsoTime | None
    whole: bool = Field(description="Sized at fill time: all the cash, or the whole holding.")

    @classmethod
    def of(cls, order: Order) -> OrderView:
        return cls.model_validate(order)


class TradeView(BaseModel):
    """A fill, with the P&L a sell realized."""

    id: int
    agent_id: str
    agent_name: str
    seq: int
    decision_id: str | None
    order_id: str | None
    symbol: str
    side: str
    quantity: DecimalStr
    price: DecimalStr
    fee: DecimalStr
    notional: DecimalStr
    realized_pnl: DecimalStr | None
    reasoning: str
    idempotency_key: str
    time: IsoTime


class TradePage(BaseModel):
    """Trades newest first, one page of them, and how many there are in all."""

    trades: list[TradeView]
    total: int
    limit: int
    offset: int


class RiskEventView(BaseModel):
    """Something the risk engine or a person did: a forced exit, a pause, the kill switch..."""

    id: int
    agent_id: str | None
    time: IsoTime
    kind: str
    symbol: str | None
    detail: str


class BarView(BaseModel):
    model_config = _FROM_RECORDS

    symbol: str
    time: IsoTime
    open: DecimalStr
    high: DecimalStr
    low: DecimalStr
    close: DecimalStr
    volume: DecimalStr


class BarsView(BaseModel):
    """A symbol's latest bars, newest last."""

    symbol: str
    bars: list[BarView]

    @classmethod
    def of(cls, symbol: str, bars: list[Bar]) -> BarsView:
        return cls(symbol=symbol, bars=[BarView.model_validate(b) for b in bars])


class MismatchView(BaseModel):
    agent_id: str
    field: str
    expected: str = Field(description="Rebuilt from the history.")
    actual: str = Field(description="The wallet checked.")
    message: str

    @classmethod
    def of(cls, m: Mismatch) -> MismatchView:
        return cls(**jsonable(m), message=str(m))


class AuditView(BaseModel):
    """Live and stored wallets against a rebuild from the stored history."""

    ok: bool
    agents: int
    mismatches: list[MismatchView]


class KillState(BaseModel):
    """Whether the global kill switch is on."""

    on: bool


class KillResult(KillState):
    """The kill switch thrown: the agents it stopped, and whether positions were closed."""

    agents: list[str]
    flatten: bool


class Overview(BaseModel):
    """The state at a glance: clock, ticks, kill switch, pending approvals and every agent."""

    clock: IsoTime | None
    ticks: int
    kill_switch: bool
    pending: list[DecisionView]
    agents: list[AgentView]


class StateSnapshot(BaseModel):
    """What a WebSocket client gets on connecting, before the events."""

    agents: list[AgentView]
    prices: list[PriceView]
    pending: list[DecisionView]
    kill_switch: bool


def as_rows(model: type[BaseModel], rows: list[dict[str, Any]]) -> list[Any]:
    """Store rows (dicts) as read models."""
    return [model.model_validate(r) for r in rows]
