"""One contract for every implementation of the kernel's store port: the in-memory store of
backtests and the SQL store on SQLite and on a real PostgreSQL server must answer alike."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from phantomex.domain.agent import Agent, AgentSpec, new_id
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import Deposit, Fill, Order, OrderStatus, OrderType, Side, Wallet
from phantomex.domain.news import NewsItem
from phantomex.ledger.ledger import Ledger
from phantomex.store.memory import MemoryStore
from phantomex.store.port import DuplicateEntry, KernelStore, NewsStore
from phantomex.store.repo import Store

D = Decimal
T0 = datetime(2024, 1, 1, tzinfo=UTC)
_keys = itertools.count()


def key() -> str:
    return f"contract-{next(_keys)}"


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KernelStore]:
    if request.param == "memory":
        s: KernelStore = MemoryStore()
    elif request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'contract.db'}")
    else:
        s = Store(str(request.getfixturevalue("postgres").new_database()))
    yield s
    s.close()


def open_agent(
    store: KernelStore, ledger: Ledger, name: str, *, at: datetime = T0, cash: str = "1000"
) -> Agent:
    agent = Agent(
        id=new_id(), spec=AgentSpec(name=name, brain="rsi", symbols=["BTC"]), created_at=at
    )
    dep = Deposit(agent.id, D(cash), at, key(), initial=True)
    with store.unit():
        ledger.open_wallet(dep, persist=lambda w: store.add_agent(agent, dep, w))
    return agent


def trade(
    store: KernelStore,
    ledger: Ledger,
    agent: Agent,
    side: str,
    qty: str,
    price: str,
    *,
    at: datetime = T0,
    symbol: str = "BTC",
    decision_id: str | None = None,
    idem: str | None = None,
) -> Fill:
    f = Fill(
        agent_id=agent.id,
        symbol=symbol,
        side=Side(side),
        quantity=D(qty),
        price=D(price),
        fee=D("0.5"),
        time=at,
        idempotency_key=idem or key(),
        decision_id=decision_id,
    )
    with store.unit():
        ledger.apply(f)
    return f


def decision(agent: Agent, at: datetime, status: str = "pending", **kw: object) -> DecisionRecord:
    return DecisionRecord(
        id=new_id(), agent_id=agent.id, time=at, source="brain", action="buy", status=status,
        symbol="BTC", **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_agents_round_trip_in_creation_order_and_deleted_ones_are_gone(
    store: KernelStore,
) -> None:
    ledger = Ledger(store.commit_entry)
    b = open_agent(store, ledger, "b", at=T0 + timedelta(minutes=1))
    a = open_agent(store, ledger, "a", at=T0)
    assert [x.id for x in store.load_agents()] == [a.id, b.id]
    a.risk_state.peak_equity = D("1234.5")
    with store.unit():
        store.save_agents([a])
    (loaded,) = [x for x in store.load_agents() if x.id == a.id]
    assert loaded.risk_state.peak_equity == D("1234.5") and loaded.spec.name == "a"
    with store.unit():
        store.delete_agent(b.id, T0 + timedelta(hours=1))
    assert [x.id for x in store.load_agents()] == [a.id]


def test_wallets_and_ledger_entries_reconcile_in_applied_order(store: KernelStore) -> None:
    ledger = Ledger(store.commit_entry)
    agent = open_agent(store, ledger, "w")
    other = open_agent(store, ledger, "v")  # its entries interleave with w's
    trade(store, ledger, agent, "buy", "2", "100", at=T0 + timedelta(minutes=1))
    mine = trade(store, ledger, other, "buy", "1", "100", at=T0 + timedelta(minutes=1))
    dep = Deposit(agent.id, D("50.123456789"), T0 + timedelta(minutes=2), key())
    with store.unit():
        ledger.deposit(dep)
    trade(store, ledger, agent, "sell", "1", "110", at=T0 + timedelta(minutes=3))
    wallet: Wallet = store.load_wallets()[agent.id]
    assert wallet.cash == ledger.wallet(agent.id).cash
    assert wallet.version == ledger.wallet(agent.id).version
    everyone = store.ledger_entries()
    assert set(everyone) == {agent.id, other.id}
    assert [e.idempotency_key for e in everyone[other.id]][1:] == [mine.idempotency_key]
    entries = store.ledger_entries(agent.id)[agent.id]
    assert entries == everyone[agent.id]
    assert [type(e).__name__ for e in entries] == ["Deposit", "Fill", "Deposit", "Fill"]
    assert entries[2].amount == D("50.123456789")  # type: ignore[union-attr]
    rebuilt = Ledger()
    for e in entries:
        if isinstance(e, Fill):
            rebuilt.apply(e)
        elif e.initial:
            rebuilt.open_wallet(e)
        else:
            rebuilt.deposit(e)
    assert rebuilt.wallet(agent.id).cash == wallet.cash


def test_a_duplicate_idempotency_key_raises_and_writes_nothing(store: KernelStore) -> None:
    ledger = Ledger(store.commit_entry)
    agent = open_agent(store, ledger, "dup")
    first = trade(store, ledger, agent, "buy", "1", "100", idem="same-key")
    assert "same-key" in store.used_keys()
    before = store.load_wallets()[agent.id]
    again = replace(first, quantity=D(5))
    with pytest.raises(DuplicateEntry), store.unit():
        store.commit_entry(again, before, before.copy())
    assert store.count_trades(agent.id) == 1
    assert store.load_wallets()[agent.id].cash == before.cash


def test_decisions_newest_first_filtered_paged_and_marked_by_their_fill(
    store: KernelStore,
) -> None:
    ledger = Ledger(store.commit_entry)
    agent = open_agent(store, ledger, "d")
    other = open_agent(store, ledger, "o")
    recs = [decision(agent, T0 + timedelta(minutes=i)) for i in range(5)]
    with store.unit():
        for rec in recs:
            store.save_decision(rec)
        store.save_decision(decision(other, T0, status="held"))
    assert [d.id for d in store.decisions(agent_id=agent.id)] == [r.id for r in reversed(recs)]
    assert [d.id for d in store.decisions(agent_id=agent.id, limit=2, offset=1)] == [
        recs[3].id,
        recs[2].id,
    ]
    assert {d.agent_id for d in store.decisions(status="held")} == {other.id}
    assert store.get_decision("no-such-decision") is None
    trade(
        store,
        ledger,
        agent,
        "buy",
        "1",
        "99.5",
        at=T0 + timedelta(minutes=9),
        decision_id=recs[0].id,
    )
    got = store.get_decision(recs[0].id)
    assert got is not None and got.status == "executed" and got.price == D("99.5")


def test_a_saved_decision_reads_back_whole_and_apart_from_the_callers_record(
    store: KernelStore,
) -> None:
    agent = open_agent(store, Ledger(store.commit_entry), "r")
    rec = decision(
        agent, T0, quantity=D("0.5"), price=D("101.25"), reasoning="why", reason="ok",
        confidence=0.75, checks=[{"name": "size", "passed": True, "detail": "d"}],
        meta={"fast": 1.5}, resolved_at=T0 + timedelta(minutes=1),
    )  # fmt: skip
    with store.unit():
        store.save_decision(rec)
    rec.status, rec.reason = "rejected", "changed after saving"
    got = store.get_decision(rec.id)
    assert got is not None and got is not rec
    assert (got.status, got.reason) == ("pending", "ok")
    assert (got.quantity, got.price, got.reasoning, got.confidence) == (
        D("0.5"),
        D("101.25"),
        "why",
        0.75,
    )
    assert got.checks == rec.checks and got.meta == {"fast": 1.5}
    assert got.resolved_at == T0 + timedelta(minutes=1)
    got.status = "held"  # a read is a copy too
    again = store.get_decision(rec.id)
    assert again is not None and again.status == "pending"


def test_trades_newest_first_with_totals_filters_and_sides(store: KernelStore) -> None:
    ledger = Ledger(store.commit_entry)
    agent = open_agent(store, ledger, "t", cash="100000")
    for i in range(3):
        trade(store, ledger, agent, "buy", "1", "100", at=T0 + timedelta(minutes=i))
    trade(store, ledger, agent, "sell", "2", "120", at=T0 + timedelta(minutes=5))
    rows, total = store.trades(agent_id=agent.id, limit=2)
    assert total == 4 and [r["side"] for r in rows] == ["sell", "buy"]
    assert rows[0]["realized_pnl"] is not None and D(rows[0]["quantity"]) == 2
    assert store.trades(symbol="ETH") == ([], 0)
    assert store.count_trades(agent.id, "buy") == 3
    assert store.count_trades(agent.id, "sell") == 1


def test_orders_stay_open_until_filled(store: KernelStore) -> None:
    ledger = Ledger(store.commit_entry)
    agent = open_agent(store, ledger, "ord")
    order = Order(
        id=new_id(), agent_id=agent.id, symbol="BTC", side=Side.BUY, quantity=D(1),
        type=OrderType.LIMIT, limit_price=D(90), created_at=T0, idempotency_key=key(),
    )  # fmt: skip
    with store.unit():
        store.save_order(order, OrderStatus.OPEN)
    assert [o.id for o in store.open_orders()] == [order.id]
    with store.unit():
        store.save_order(order, OrderStatus.CANCELLED)
    assert store.open_orders() == []


CALL = {
    "purpose": "decide",
    "endpoint": "local",
    "model": "m",
    "messages": [{"role": "user", "content": "hi"}],
    "raw_response": "{}",
}


def test_risk_events_llm_calls_cache_and_state(store: KernelStore) -> None:
    ledger = Ledger(store.commit_entry)
    agent = open_agent(store, ledger, "misc")
    with store.unit():
        store.add_risk_event("rejected", "first", T0, agent.id, "BTC")
        store.add_risk_event("kill", "second", T0 + timedelta(seconds=1))
        store.add_llm_calls("dec-1", agent.id, T0, [CALL])
        store.cache_put("k", {"text": "answer"}, T0)
        store.set_state("clock", {"now": "2024-01-01"})
    assert [e["detail"] for e in store.risk_events()] == ["second", "first"]
    assert [e["detail"] for e in store.risk_events(agent_id=agent.id)] == ["first"]
    (call,) = store.llm_calls("dec-1")
    assert {k: call[k] for k in CALL} == CALL and call["agent_id"] == agent.id
    assert store.cache_get("k") == {"text": "answer"} and store.cache_get("nope") is None
    assert [k for k, _, _ in store.cache_entries()] == ["k"]
    assert store.get_state("clock") == {"now": "2024-01-01"} and store.get_state("x") is None


def _news(key: str, seen: datetime, **kw: object) -> NewsItem:
    fields: dict[str, object] = {"source": "feed", "title": f"headline {key}", "guid": key}
    fields.update(kw)
    return NewsItem(first_seen=seen, **fields)  # type: ignore[arg-type]


def test_news_are_deduplicated_by_guid_and_link_keeping_the_first_sight(store: KernelStore) -> None:
    news: NewsStore = store  # type: ignore[assignment]
    first = _news("g1", T0 + timedelta(hours=2), link="https://example.org/a", symbols=("BTC",))
    with store.unit():
        assert news.add_news([first, _news("g2", T0 + timedelta(hours=3))]) == 2
        # the same guid again, later: nothing new, the first sight stays
        assert news.add_news([_news("g1", T0 + timedelta(hours=5))]) == 0
        # another guid with the same link, seen earlier: the same item, now first seen earlier
        assert news.add_news([_news("other", T0 + timedelta(hours=1), link=first.link)]) == 0
        # an item without a guid is keyed by its link
        assert news.add_news([_news("x", T0, guid=None, link="https://example.org/b")]) == 1
    assert news.count_news() == 3
    (item,) = news.news(T0 + timedelta(days=1), symbols=["btc"])
    assert item.key == "g1" and item.first_seen == T0 + timedelta(hours=1)
    assert item.title == "headline g1" and item.link == first.link and item.symbols == ("BTC",)
    (by_link,) = news.news(T0, limit=5)
    assert by_link.guid is None and by_link.key == "https://example.org/b"


def test_news_reads_never_return_an_item_first_seen_after_the_time(store: KernelStore) -> None:
    news: NewsStore = store  # type: ignore[assignment]
    items = [
        _news(f"n{i}", T0 + timedelta(minutes=10 * i), summary=f"ETH upgrade part {i}")
        for i in range(6)
    ]
    with store.unit():
        news.add_news(items)
    at = T0 + timedelta(minutes=30)
    assert [i.key for i in news.news(at)] == ["n3", "n2", "n1", "n0"]  # newest first, <= at
    assert [i.key for i in news.news(at, since=T0 + timedelta(minutes=10))] == ["n3", "n2"]
    assert [i.key for i in news.news(at, limit=2)] == ["n3", "n2"]
    assert [i.key for i in news.news(at, query="upgrade PART 2")] == ["n2"]
    assert news.news(at, query="halving") == []
    assert news.news(at, symbols=["ETH"]) == []  # no item is tagged with ETH
    assert news.news(T0 - timedelta(seconds=1)) == []
