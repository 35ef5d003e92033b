"""Read models of the kernel's live state: an agent with its wallet valued at the latest marks,
and the latest price of each symbol. The kernel's ``agent`` and ``price`` events carry them;
the service layer (:mod:`phantomex.service`) serves them to every front end.

Pure functions of domain values: they read no kernel, so any caller can build them. Their JSON
(``model_dump(mode="json")``) is the wire format :func:`phantomex.serialize.jsonable` makes."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, TypeAdapter

from phantomex.domain.agent import Agent
from phantomex.domain.models import AgentStatus, Mode, Snapshot, Wallet
from phantomex.domain.money import ZERO
from phantomex.domain.risk import RiskProfile
from phantomex.market.guard import Suspect
from phantomex.serialize import DecimalStr, IsoTime, JsonAny


class PositionView(BaseModel):
    """An open position valued at the latest mark (value and P&L are null without one)."""

    symbol: str
    quantity: DecimalStr
    avg_cost: DecimalStr
    cost: DecimalStr
    mark: DecimalStr | None
    value: DecimalStr | None
    unrealized_pnl: DecimalStr | None
    opened_at: IsoTime | None


class WalletView(BaseModel):
    """A paper wallet: funding, cash, equity and P&L (USD), and its open positions."""

    allowance: DecimalStr
    cash: DecimalStr
    deposits: DecimalStr
    funding: DecimalStr
    equity: DecimalStr
    pnl: DecimalStr
    pnl_pct: DecimalStr
    realized_pnl: DecimalStr
    unrealized_pnl: DecimalStr
    fees_paid: DecimalStr
    positions: list[PositionView]


class AgentView(BaseModel):
    """An agent as the dashboard, the CLI and Telegram show it."""

    id: str
    name: str
    brain: str
    brain_description: str
    notes: list[JsonAny]
    params: dict[str, JsonAny]
    goal: str
    mode: Mode
    status: AgentStatus
    status_reason: str
    symbols: list[str]
    interval_seconds: int
    risk: RiskProfile
    created_at: IsoTime
    last_decided_at: IsoTime | None
    wallet: WalletView


class SuspectView(BaseModel):
    """Why a symbol's latest prices are not trusted (see :mod:`phantomex.market.guard`)."""

    since: str
    reason: str
    last_accepted: str | None
    price: str | None
    confirmations: int
    needed: int


class PriceView(BaseModel):
    """The latest accepted price of a symbol, and whether newer prices are held as suspect."""

    symbol: str
    time: IsoTime
    price: DecimalStr
    change_24h_pct: DecimalStr | None
    suspect: bool
    suspect_detail: SuspectView | None


PRICE_LIST: TypeAdapter[list[PriceView]] = TypeAdapter(list[PriceView])


def wallet_view(wallet: Wallet, marks: Mapping[str, Decimal]) -> WalletView:
    """``wallet`` valued at ``marks``."""
    marks = dict(marks)
    equity = wallet.equity(marks)
    pnl = equity - wallet.funding
    positions = []
    for sym, pos in sorted(wallet.positions.items()):
        mark = marks.get(sym)
        positions.append(
            PositionView(
                symbol=sym,
                quantity=pos.quantity,
                avg_cost=pos.avg_cost,
                cost=pos.cost,
                mark=mark,
                value=pos.value(mark) if mark is not None else None,
                unrealized_pnl=pos.unrealized_pnl(mark) if mark is not None else None,
                opened_at=pos.opened_at,
            )
        )
    return WalletView(
        allowance=wallet.allowance,
        cash=wallet.cash,
        deposits=wallet.deposits,
        funding=wallet.funding,
        equity=equity,
        pnl=pnl,
        pnl_pct=(pnl / wallet.funding * 100) if wallet.funding else ZERO,
        realized_pnl=wallet.realized_pnl,
        unrealized_pnl=wallet.unrealized_pnl(marks),
        fees_paid=wallet.fees_paid,
        positions=positions,
    )


def agent_view(
    agent: Agent, wallet: Wallet, marks: Mapping[str, Decimal], brain_description: str
) -> AgentView:
    """``agent`` with its ``wallet`` valued at ``marks``."""
    spec = agent.spec
    return AgentView(
        id=agent.id,
        name=agent.name,
        brain=spec.brain,
        brain_description=brain_description,
        notes=list(agent.brain_state.get("notes", [])),
        params=spec.params,
        goal=spec.goal,
        mode=spec.mode,
        status=agent.status,
        status_reason=agent.status_reason,
        symbols=spec.symbols,
        interval_seconds=spec.interval_seconds,
        risk=spec.risk,
        created_at=agent.created_at,
        last_decided_at=agent.last_decided_at,
        wallet=wallet_view(wallet, marks),
    )


def price_views(prices: Mapping[str, Snapshot], suspects: Mapping[str, Suspect]) -> list[PriceView]:
    """The latest price of each symbol (sorted), with ``suspect`` (and, when set, why)."""
    out = []
    for sym in sorted(prices):
        snap = prices[sym]
        held = suspects.get(sym)
        detail: dict[str, Any] | None = held.as_json() if held is not None else None
        out.append(
            PriceView(
                symbol=snap.symbol,
                time=snap.time,
                price=snap.price,
                change_24h_pct=snap.change_24h_pct,
                suspect=held is not None,
                suspect_detail=SuspectView(**detail) if detail is not None else None,
            )
        )
    return out
