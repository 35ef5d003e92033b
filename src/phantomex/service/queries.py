"""The queries every front end reads (REST, WebSocket, Telegram, metrics, the MCP server):
typed read models of the kernel's state and its stored history. Nothing here changes state.

Synchronous queries read the kernel as it stands (they run between two awaits of the event
loop); the asynchronous ones hold the kernel's lock, for a view no tick is half-way through."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.domain.agent import Agent
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import Wallet
from phantomex.kernel.bus import Event
from phantomex.kernel.runtime import Kernel, KernelError, NotFound
from phantomex.kernel.views import AgentView, PriceView
from phantomex.market.sources import health_of, sources_report
from phantomex.problems import Problem
from phantomex.service.equity import histories
from phantomex.service.records import (
    AuditView,
    BarsView,
    DecisionDetail,
    DecisionView,
    KillState,
    MismatchView,
    OrderView,
    Overview,
    RiskEventView,
    StateSnapshot,
    TradePage,
    TradeView,
    as_rows,
)


class Queries:
    """Read models over one kernel."""

    def __init__(self, kernel: Kernel) -> None:
        self._k = kernel

    # -- agents -----------------------------------------------------------------------------------
    def agents(self) -> list[AgentView]:
        """Every agent with its wallet and positions valued at the latest marks."""
        return [self._k.view_of(a) for a in self._k.agent_list()]

    def agent(self, agent_id: str) -> AgentView:
        """One agent (NotFound if there is none of that id)."""
        return self._k.view_of(self._k.get(agent_id))

    def agent_records(self) -> list[Agent]:
        """The agents themselves (their specs, status and risk state)."""
        return self._k.agent_list()

    def resolve_agent(self, ref: str) -> Agent:
        """An agent by id, name (any case) or unique id prefix (KernelError otherwise)."""
        ref = ref.strip()
        agents = self._k.agent_list()
        for agent in agents:
            if agent.id == ref:
                return agent
        named = [a for a in agents if a.name.lower() == ref.lower()]
        if len(named) == 1:
            return named[0]
        prefixed = [a for a in agents if ref and a.id.startswith(ref)]
        if len(prefixed) == 1:
            return prefixed[0]
        known = ", ".join(sorted(a.name for a in agents)) or "none"
        raise KernelError(f"no single agent matches {ref!r}; agents: {known}")

    def agent_name(self, agent_id: str) -> str | None:
        """The agent's name, None if there is no such agent (any more)."""
        return next((a.name for a in self._k.agent_list() if a.id == agent_id), None)

    def agent_counts(self) -> Counter[str]:
        """How many agents are in each status."""
        return Counter(a.status.value for a in self._k.agent_list())

    def wallets(self) -> dict[str, Wallet]:
        """Every live wallet, by agent id."""
        return self._k.wallets()

    def equity(
        self,
        agent_ids: Sequence[str] | None,
        since: datetime | None,
        until: datetime | None,
        points: int,
    ) -> dict[str, Any]:
        """The equity histories of ``agent_ids`` (all agents when None; NotFound for an unknown
        one), sampled at most ``points`` times from ``since`` to ``until`` (default: the clock)."""
        if agent_ids is None:
            ids = [a.id for a in self._k.agent_list()]
        else:
            ids = [self._k.get(i).id for i in agent_ids]
        return histories(self._k, ids, since, until, points)

    # -- market -----------------------------------------------------------------------------------
    def prices(self) -> list[PriceView]:
        """The latest accepted price of each symbol, with whether it is suspect (and why)."""
        return self._k.price_views()

    def history(self, symbol: str, limit: int) -> BarsView:
        """The latest ``limit`` bars of ``symbol`` up to the clock (NotFound if unknown)."""
        sym = symbol.upper()
        instruments = self._k.feed.instruments
        if sym not in instruments:
            raise KernelError(
                f"unknown symbol {symbol!r}; known: {sorted(instruments)}",
                field="symbol",
                code="not_found",
            )
        now = self._k.now
        return BarsView.of(sym, self._k.history.view(now).bars(sym, limit) if now else [])

    def sources(self) -> list[dict[str, Any]]:
        """Each market source's health and the age of its prices."""
        k, wall = self._k, datetime.now(UTC)
        return sources_report(k.feed, k.prices, k.now or wall, wall, k.guard.suspects())

    def source_staleness(self, wall: datetime) -> dict[str, bool]:
        """Whether each market source is stale at ``wall`` (the wall clock)."""
        return {h.source: h.stale(wall) for h in health_of(self._k.feed)}

    # -- decisions and approvals ------------------------------------------------------------------
    def decisions(
        self,
        agent_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DecisionView]:
        """Decisions newest first, of one agent or all (kept after an agent is deleted)."""
        recs = self._k.records().decisions(agent_id, status, limit, offset)
        return [DecisionView.of(r) for r in recs]

    def agent_decisions(
        self, agent_id: str, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[DecisionView]:
        """A live agent's decisions (NotFound if the agent does not exist)."""
        self._k.get(agent_id)
        return self.decisions(agent_id, status, limit, offset)

    def decision(self, decision_id: str) -> DecisionRecord | None:
        """A stored decision as it stands now."""
        return self._k.records().get_decision(decision_id)

    def decision_detail(self, agent_id: str, decision_id: str) -> DecisionDetail:
        """An agent's decision with every LLM call behind it (NotFound otherwise)."""
        rec = self.decision(decision_id)
        if rec is None or rec.agent_id != agent_id:
            raise NotFound("decision", decision_id)
        calls = self._k.records().llm_calls(decision_id)
        return DecisionDetail.model_validate(
            DecisionView.of(rec).model_dump() | {"llm_calls": calls}
        )

    def pending(self) -> list[DecisionView]:
        """Decisions waiting for a person's approval, oldest first."""
        return [DecisionView.of(r) for r in self._k.pending()]

    def wall_now(self) -> datetime:
        """A person's clock, on which approvals expire."""
        return self._k.clock.now()

    # -- trades, orders, risk ---------------------------------------------------------------------
    def trades(
        self,
        agent_id: str | None = None,
        symbol: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> TradePage:
        """Trades newest first, one page, with the total count."""
        sym = symbol.upper() if symbol else None
        rows, total = self._k.records().trades(agent_id, sym, limit, offset)
        return TradePage(trades=as_rows(TradeView, rows), total=total, limit=limit, offset=offset)

    def open_orders(self, agent_id: str | None = None) -> list[OrderView]:
        """Resting limit and stop orders, of one agent or all."""
        return [OrderView.of(o) for o in self._k.open_orders(agent_id)]

    def risk_events(self, agent_id: str | None = None, limit: int = 100) -> list[RiskEventView]:
        """Risk events newest first."""
        return as_rows(RiskEventView, self._k.records().risk_events(agent_id, limit))

    def kill_state(self) -> KillState:
        return KillState(on=self._k.killed)

    # -- the system -------------------------------------------------------------------------------
    def clock(self) -> datetime | None:
        """The market clock (None before the first price)."""
        return self._k.now

    def now(self) -> datetime:
        """The market clock, or the wall clock before the first price."""
        return self._k.now or datetime.now(UTC)

    def ticks(self) -> int:
        return self._k.ticks

    def problems(self) -> list[Problem]:
        """What start-up skipped (agents, LLM endpoints, sources, settings), with reasons."""
        return list(self._k.problems)

    def overview(self) -> Overview:
        """Clock, ticks, kill switch, pending approvals and every agent."""
        return Overview(
            clock=self._k.now,
            ticks=self._k.ticks,
            kill_switch=self._k.killed,
            pending=self.pending(),
            agents=self.agents(),
        )

    async def settled_overview(self) -> Overview:
        """:meth:`overview` taken under the kernel's lock (no tick half-way through)."""
        async with self._k.exclusive():
            return self.overview()

    def snapshot(self) -> StateSnapshot:
        """Agents, prices, pending approvals and the kill switch (a WebSocket's first message)."""
        return StateSnapshot(
            agents=self.agents(),
            prices=self.prices(),
            pending=self.pending(),
            kill_switch=self._k.killed,
        )

    async def audit(self) -> AuditView:
        """Live and stored wallets against a rebuild from the stored history (under the lock)."""
        async with self._k.exclusive():
            mismatches = self._k.audit()
            agents = len(self._k.agent_list())
        return AuditView(
            ok=not mismatches, agents=agents, mismatches=[MismatchView.of(m) for m in mismatches]
        )

    def llm(self, endpoint: str | None = None) -> LLMRuntime:
        """The LLM runtime (KernelError when there is none; NotFound for an unknown endpoint)."""
        llm = self._k.llm
        if llm is None:
            raise KernelError("no LLM runtime", code="not_found")
        if endpoint is not None and endpoint not in llm.endpoints:
            raise NotFound("LLM endpoint", endpoint)
        return llm

    def subscribe(
        self, follower: Callable[[Event], None], types: Iterable[str] | None = None
    ) -> Callable[[], None]:
        """Follow the kernel's events (of ``types`` only, when given); returns the unsubscriber."""
        return self._k.bus.subscribe(follower, types)
