"""The store on a real SQLite file: schema, exact amounts, atomic ledger commits, queries."""

from __future__ import annotations

import contextvars
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy import func, inspect, select, text, update
from sqlalchemy.exc import StatementError

from phantomex.domain.agent import Agent, AgentSpec, new_id
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import Deposit, Fill, Side, Wallet
from phantomex.domain.risk import RiskState
from phantomex.ledger.ledger import Ledger
from phantomex.ledger.reconcile import reconcile
from phantomex.store.base import Base
from phantomex.store.db import alembic_config
from phantomex.store.models import DepositRow, PositionRow, TradeRow, WalletRow
from phantomex.store.port import DuplicateEntry
from phantomex.store.repo import Store

D = Decimal
T0 = datetime(2024, 1, 1, tzinfo=UTC)
PRECISE = D("0.1234567890123456789012345678")

_keys = itertools.count()


def key() -> str:
    return f"key-{next(_keys)}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """The store on SQLite and on a real PostgreSQL server (see conftest.db_url)."""
    s = Store(db_url)
    yield s
    s.close()


def make_agent(name: str = "alpha", symbols: list[str] | None = None) -> Agent:
    spec = AgentSpec(name=name, brain="momentum", symbols=symbols or ["BTC", "ETH"])
    return Agent(id=new_id(), spec=spec, created_at=T0)


def add_agent(
    store: Store, ledger: Ledger, name: str = "alpha", allowance: Decimal | str = "10000"
) -> Agent:
    agent = make_agent(name)
    dep = Deposit(agent.id, D(allowance), T0, key(), initial=True)
    ledger.open_wallet(dep, persist=lambda w: store.add_agent(agent, dep, w))
    return agent


def fill(
    agent: Agent,
    side: str,
    qty: Decimal | str,
    price: Decimal | str,
    fee: Decimal | str = "0",
    *,
    symbol: str = "BTC",
    time: datetime = T0,
    idem: str | None = None,
    decision_id: str | None = None,
) -> Fill:
    return Fill(
        agent_id=agent.id,
        symbol=symbol,
        side=Side(side),
        quantity=D(qty),
        price=D(price),
        fee=D(fee),
        time=time,
        idempotency_key=idem or key(),
        decision_id=decision_id,
        reasoning=f"{side} {symbol}",
    )


def count(store: Store, model: type[Base]) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def wallet_row(store: Store, agent_id: str) -> tuple[object, ...]:
    with store.session() as s:
        w = s.get(WalletRow, agent_id)
        assert w is not None
        return (w.allowance, w.cash, w.deposits, w.realized_pnl, w.fees_paid, w.version)


# ----------------------------------------------------------------------------- schema


def test_migrations_create_the_schema_at_head(store: Store, tmp_path: Path) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {
        "agents",
        "wallets",
        "positions",
        "trades",
        "deposits",
        "decisions",
        "orders",
        "price_snapshots",
        "risk_events",
        "kernel_state",
        "alembic_version",
    } <= tables
    head = ScriptDirectory.from_config(alembic_config(store.engine)).get_current_head()
    with store.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head
        # the migrated schema is what the models declare (no drift between the two)
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_reopening_an_existing_database_keeps_the_data(db_url: str) -> None:
    url = db_url
    first = Store(url)
    first.set_state("cursor", {"n": 1})
    first.close()
    second = Store(url)  # migrating an up-to-date database is a no-op
    assert second.get_state("cursor") == {"n": 1}
    second.close()


def test_sqlite_pragmas_are_set(store: Store) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


# ----------------------------------------------------------------------------- types


def test_decimals_round_trip_exactly(store: Store) -> None:
    ledger = Ledger(on_commit=store.commit_entry)
    agent = add_agent(store, ledger, allowance=PRECISE)
    tiny = D("1E-30")
    ledger.apply(fill(agent, "buy", PRECISE, "0.5", tiny))
    loaded = store.load_wallets()[agent.id]
    live = ledger.wallet(agent.id)
    assert loaded.allowance == PRECISE
    assert str(loaded.allowance) == "0.1234567890123456789012345678"
    assert loaded.cash == live.cash
    assert str(loaded.cash) == str(live.cash)
    assert loaded.fees_paid == tiny
    assert loaded.positions["BTC"].quantity == PRECISE
    assert loaded.positions["BTC"].cost == live.positions["BTC"].cost
    [_, stored_fill] = store.ledger_entries()[agent.id]
    assert isinstance(stored_fill, Fill)
    assert stored_fill.quantity == PRECISE
    assert stored_fill.fee == tiny


def test_datetimes_come_back_aware_utc(store: Store) -> None:
    ledger = Ledger(on_commit=store.commit_entry)
    agent = add_agent(store, ledger)
    plus_two = datetime(2024, 5, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    ledger.apply(fill(agent, "buy", "1", "100", time=plus_two))
    [_, f] = store.ledger_entries()[agent.id]
    assert f.time == plus_two
    assert f.time.tzinfo is UTC
    assert f.time.hour == 12 and f.time.microsecond == 123456
    opened = store.load_wallets()[agent.id].positions["BTC"].opened_at
    assert opened is not None and opened.utcoffset() == timedelta(0) and opened == plus_two
    [loaded] = store.load_agents()
    assert loaded.created_at == T0 and loaded.created_at.tzinfo is UTC


def test_naive_datetimes_are_refused(store: Store) -> None:
    ledger = Ledger(on_commit=store.commit_entry)
    agent = add_agent(store, ledger)
    before = wallet_row(store, agent.id)
    with pytest.raises((ValueError, StatementError), match="naive"):
        ledger.apply(fill(agent, "buy", "1", "100", time=datetime(2024, 1, 1)))
    assert wallet_row(store, agent.id) == before
    assert count(store, TradeRow) == 0
    assert ledger.wallet(agent.id).cash == D(10000)


def test_nan_decimals_are_refused(store: Store) -> None:
    ledger = Ledger(on_commit=store.commit_entry)
    agent = add_agent(store, ledger)
    before = wallet_row(store, agent.id)
    w = ledger.wallet(agent.id)
    bad_after = w.copy()
    bad_after.version += 1
    bad_after.cash = D("NaN")
    dep = Deposit(agent.id, D(1), T0, key())
    with pytest.raises((ValueError, StatementError), match="refusing"):
        store.commit_entry(dep, w, bad_after)
    assert wallet_row(store, agent.id) == before
    assert count(store, DepositRow) == 1
    with pytest.raises((ValueError, StatementError), match="refusing"):
        store.save_decision(
            DecisionRecord(
                id="d-nan", agent_id=agent.id, time=T0, source="brain", action="buy",
                status="pending", quantity=D("NaN"),
            )
        )  # fmt: skip
    assert store.get_decision("d-nan") is None


# ----------------------------------------------------------------------------- ledger commits


def test_add_agent_stores_agent_wallet_and_allowance(store: Store) -> None:
    ledger = Ledger(on_commit=store.commit_entry)
    agent = add_agent(store, ledger, allowance="2500")
    assert wallet_row(store, agent.id) == (D(2500), D(2500), D(0), D(0), D(0), 1)
    [loaded] = store.load_agents()
    assert loaded.id == agent.id and loaded.spec.allowance == D(2500)
    assert loaded.spec.symbols == ["BTC", "ETH"]
    assert loaded.risk_state == RiskState()
    [dep] = store.ledger_entries()[agent.id]
    assert isinstance(dep, Deposit) and dep.initial and dep.amount == D(2500)


def test_add_agent_failure_leaves_no_wallet_in_ledger_or_store(store: Store) -> None:
    ledger = Ledger(on_commit=store.commit_entry)
    first = add_agent(store, ledger, "one")
    clone = Agent(id=first.id, spec=first.spec, created_at=T0)  # same primary key
    dep = Deposit("other-id", D(1), T0, key(), initial=True)
    with pytest.raises(Exception):  # noqa: B017 - any integrity error will do
        ledger.open_wallet(dep, persist=lambda w: store.add_agent(clone, dep, w))
    assert not ledger.has_wallet("other-id")
    assert set(store.load_wallets()) == {first.id}


def test_saving_agents_writes_state_and_spec_edits_even_after_a_rollback(store: Store) -> None:
    ledger = Ledger(on_commit=store.commit_entry)
    agent = add_agent(store, ledger)
    store.save_agents([agent])  # the whole row: this store has not saved this spec yet
    agent.last_decided_at, agent.brain_state = T0 + timedelta(minutes=1), {"n": 1}
    agent.risk_state = RiskState(peak_equity=D("10123.45"))
    store.save_agents([agent])  # the state columns only
    [loaded] = store.load_agents()
    assert (loaded.last_decided_at, loaded.brain_state) == (T0 + timedelta(minutes=1), {"n": 1})
    assert loaded.risk_state == agent.risk_state and loaded.spec == agent.spec
    with pytest.raises(RuntimeError), store.unit():  # an edit saved, then rolled back
        agent.spec = agent.spec.model_copy(update={"goal": "rolled back"})
        store.save_agents([agent])
        raise RuntimeError("tick failed")
    agent.brain_state = {"n": 2}
    store.save_agents([agent])  # the rolled back edit is written again, with the state
    [loaded] = store.load_agents()
    assert loaded.spec.goal == "rolled back" and loaded.brain_state == {"n": 2}
    edited = agent.spec.model_copy(update={"symbols": ["ETH"], "interval_seconds": 300})
    agent.spec = edited
    store.save_agents([agent, agent])
    [loaded] = store.load_agents()
    assert loaded.spec == edited
    with pytest.raises(ValidationError):
        agent.spec.goal = "in place"  # type: ignore[misc]  # a spec is replaced, never edited


def test_commit_entry_writes_trade_wallet_and_positions_together(store: Store) -> None:
    ledger = Ledger(on_commit=store.commit_entry)
    agent = add_agent(store, ledger)
    ledger.apply(fill(agent, "buy", "2", "100", "0.2"))
    ledger.apply(fill(agent, "buy", "1", "10", "0.01", symbol="ETH"))
    w = ledger.apply(fill(agent, "sell", "0.5", "120", "0.06"))
    assert wallet_row(store, agent.id) == (
        w.allowance,
        w.cash,
        w.deposits,
        w.realized_pnl,
        w.fees_paid,
        4,
    )
    with store.session() as s:
        positions = {p.symbol: (p.quantity, p.cost) for p in s.scalars(select(PositionRow))}
        realized = [t.realized_pnl for t in s.scalars(select(TradeRow).order_by(TradeRow.seq))]
    assert positions == {
        "BTC": (D("1.5"), D("150.15")),
        "ETH": (D(1), D("10.01")),
    }
    # only sells carry realized P&L: 60 - 0.06 - 50.05
    assert realized == [None, None, D("9.89")]
    # selling out removes the stored position
    ledger.apply(fill(agent, "sell", "1", "10", symbol="ETH"))
    assert set(store.load_wallets()[agent.id].positions) == {"BTC"}


def test_duplicate_idempotency_key_raises_and_writes_nothing(store: Store) -> None:
    ledger = Ledger(on_commit=store.commit_entry)
    agent = add_agent(store, ledger)
    ledger.apply(fill(agent, "buy", "1", "100", idem="once"))
    before_row = wallet_row(store, agent.id)
    before_live = ledger.wallet(agent.id)
    trades = count(store, TradeRow)
    with pytest.raises(DuplicateEntry):
        ledger.apply(fill(agent, "buy", "5", "100", idem="once", symbol="ETH"))
    assert wallet_row(store, agent.id) == before_row
    assert count(store, TradeRow) == trades == 1
    assert set(store.load_wallets()[agent.id].positions) == {"BTC"}
    live = ledger.wallet(agent.id)
    assert (live.cash, live.version, set(live.positions)) == (
        before_live.cash,
        before_live.version,
        {"BTC"},
    )
    # a deposit reusing the key of another deposit is refused the same way
    first = _bump(live, D(1))
    store.commit_entry(Deposit(agent.id, D(1), T0, "once-dep"), live, first)
    second = _bump(first, D(1))  # a new seq, only the key repeats
    with pytest.raises(DuplicateEntry):
        store.commit_entry(Deposit(agent.id, D(1), T0, "once-dep"), first, second)
    assert wallet_row(store, agent.id)[1] == first.cash
    assert count(store, DepositRow) == 2
    assert reconcile(store.load_wallets(), store.ledger_entries()) == []


def _bump(w: Wallet, amount: Decimal) -> Wallet:
    new = w.copy()
    new.version += 1
    new.cash += amount
    new.deposits += amount
    return new


def test_fill_marks_its_decision_executed(store: Store) -> None:
    ledger = Ledger(on_commit=store.commit_entry)
    agent = add_agent(store, ledger)
    store.save_decision(
        DecisionRecord(
            id="dec1", agent_id=agent.id, time=T0, source="brain", action="buy", status="approved"
        )
    )
    ledger.apply(fill(agent, "buy", "1", "123.45", decision_id="dec1", time=T0 + timedelta(1)))
    rec = store.get_decision("dec1")
    assert rec is not None
    assert rec.status == "executed"
    assert rec.price == D("123.45")
    assert rec.resolved_at == T0 + timedelta(1)


# ----------------------------------------------------------------------------- reconcile


def run_operations(store: Store) -> tuple[Ledger, Agent, Agent]:
    ledger = Ledger(on_commit=store.commit_entry)
    a = add_agent(store, ledger, "alpha", "20000")
    b = add_agent(store, ledger, "beta", "500.5")
    ledger.apply(fill(a, "buy", "0.3", "40000.01", "12.000003"))
    ledger.apply(fill(b, "buy", "3", "33.33", "0.09999"))
    ledger.deposit(Deposit(a.id, D("250.25"), T0, key()))
    ledger.apply(fill(a, "sell", "0.1", "41000", "4.1"))
    ledger.apply(fill(b, "sell", "1", "35", "0.035"))  # removed basis 1/3 of a cost
    ledger.apply(fill(a, "buy", "10", "10.5", "0.105", symbol="ETH"))
    ledger.apply(fill(a, "sell", "0.2", "39000", "7.8"))  # closes BTC
    ledger.apply(fill(b, "sell", "2", "30", "0.06"))  # closes BTC
    return ledger, a, b


def test_ledger_entries_are_in_seq_order_and_reconcile(store: Store) -> None:
    ledger, a, b = run_operations(store)
    entries = store.ledger_entries()
    assert set(entries) == {a.id, b.id}
    a_entries = entries[a.id]
    assert [type(e).__name__ for e in a_entries] == [
        "Deposit",
        "Fill",
        "Deposit",
        "Fill",
        "Fill",
        "Fill",
    ]
    assert isinstance(a_entries[0], Deposit) and a_entries[0].initial
    assert isinstance(a_entries[2], Deposit) and not a_entries[2].initial
    assert [e.symbol for e in a_entries if isinstance(e, Fill)] == ["BTC", "BTC", "ETH", "BTC"]
    assert [e.side for e in a_entries if isinstance(e, Fill)] == [
        Side.BUY,
        Side.SELL,
        Side.BUY,
        Side.SELL,
    ]
    assert store.ledger_entries(b.id).keys() == {b.id}
    assert len(store.ledger_entries(b.id)[b.id]) == 4
    assert reconcile(store.load_wallets(), store.ledger_entries()) == []
    # the stored wallets are the live ones
    for agent_id, stored in store.load_wallets().items():
        live = ledger.wallet(agent_id)
        assert stored.cash == live.cash and stored.version == live.version
        assert {s: (p.quantity, p.cost) for s, p in stored.positions.items()} == {
            s: (p.quantity, p.cost) for s, p in live.positions.items()
        }


def test_tampered_wallet_is_detected_naming_the_agent(store: Store) -> None:
    _, _, b = run_operations(store)
    with store.session() as s:
        s.execute(update(WalletRow).where(WalletRow.agent_id == b.id).values(cash=D("1000000")))
    found = reconcile(store.load_wallets(), store.ledger_entries())
    assert [(m.agent_id, m.field) for m in found] == [(b.id, "cash")]
    assert b.id in str(found[0])
    assert found[0].actual == "1000000"


def test_tampered_position_is_detected(store: Store) -> None:
    _, a, _ = run_operations(store)
    with store.session() as s:
        s.execute(
            update(PositionRow)
            .where(PositionRow.agent_id == a.id, PositionRow.symbol == "ETH")
            .values(quantity=D("10.000000001"))
        )
    found = reconcile(store.load_wallets(), store.ledger_entries())
    assert [(m.agent_id, m.field) for m in found] == [(a.id, "ETH.quantity")]


# ----------------------------------------------------------------------------- decisions


def decision(agent: Agent, id_: str, status: str, minutes: int) -> DecisionRecord:
    return DecisionRecord(
        id=id_,
        agent_id=agent.id,
        time=T0 + timedelta(minutes=minutes),
        source="brain",
        action="buy",
        status=status,
        symbol="BTC",
        quantity=PRECISE,
        notional=D("100.5"),
        reasoning="momentum",
        confidence=0.75,
        reason="",
        checks=[{"name": "price", "passed": True, "detail": "ok"}],
        meta={"rsi": 28.5},
        expires_at=T0 + timedelta(hours=1),
    )


def test_decisions_save_get_and_list_by_status(store: Store) -> None:
    ledger = Ledger(on_commit=store.commit_entry)
    a = add_agent(store, ledger, "alpha")
    b = add_agent(store, ledger, "beta")
    store.save_decision(decision(a, "d1", "pending", 1))
    store.save_decision(decision(a, "d2", "rejected", 2))
    store.save_decision(decision(b, "d3", "pending", 3))
    store.save_decision(decision(a, "d4", "pending", 4))

    got = store.get_decision("d1")
    assert got == decision(a, "d1", "pending", 1)
    assert store.get_decision("missing") is None

    assert [d.id for d in store.decisions(status="pending")] == ["d4", "d3", "d1"]
    assert [d.id for d in store.decisions(agent_id=a.id)] == ["d4", "d2", "d1"]
    assert [d.id for d in store.decisions(agent_id=a.id, status="pending")] == ["d4", "d1"]
    assert [d.id for d in store.decisions(limit=2, offset=1)] == ["d3", "d2"]

    # saving again updates in place
    updated = decision(a, "d1", "approved", 1)
    updated.resolved_at = T0 + timedelta(minutes=9)
    store.save_decision(updated)
    assert store.get_decision("d1") == updated
    assert [d.id for d in store.decisions(status="pending")] == ["d4", "d3"]


def outside(store: Store, decision_id: str) -> DecisionRecord | None:
    """The decision as another task (the API) sees it: committed rows only."""
    return contextvars.Context().run(store.get_decision, decision_id)


def test_decision_saved_in_a_unit_is_read_in_it_and_committed_with_it(store: Store) -> None:
    ledger = Ledger(on_commit=store.commit_entry)
    a = add_agent(store, ledger)
    first = decision(a, "u1", "approved", 1)
    with store.unit():
        store.save_decision(first)
        assert store.get_decision("u1") == first
        first.meta["later"] = True  # the record changing after its save changes nothing stored
        store.save_decision(decision(a, "u2", "pending", 2))
        store.save_decision(decision(a, "u3", "pending", 3))
        assert [d.id for d in store.decisions(status="pending")] == ["u3", "u2"]
        held = decision(a, "u3", "held", 3)  # saved again in the unit: updated, not doubled
        store.save_decision(held)
        assert outside(store, "u1") is None  # nothing is visible before the commit
    assert outside(store, "u1") == decision(a, "u1", "approved", 1)
    assert store.get_decision("u3") == held
    assert [d.id for d in store.decisions(agent_id=a.id)] == ["u3", "u2", "u1"]


def test_decisions_saved_in_a_failed_unit_are_rolled_back(store: Store) -> None:
    ledger = Ledger(on_commit=store.commit_entry)
    a = add_agent(store, ledger)
    with pytest.raises(RuntimeError), store.unit():
        store.save_decision(decision(a, "r1", "pending", 1))
        assert store.get_decision("r1") is not None  # written in the unit's transaction
        store.save_decision(decision(a, "r2", "held", 2))  # not written yet
        raise RuntimeError("the tick failed")
    assert store.get_decision("r1") is None
    assert store.get_decision("r2") is None
    assert store.decisions(agent_id=a.id) == []


def test_fill_in_a_unit_marks_the_decision_saved_just_before(store: Store) -> None:
    ledger = Ledger(on_commit=store.commit_entry)
    a = add_agent(store, ledger)
    with store.unit():
        store.save_decision(decision(a, "f1", "approved", 1))
        ledger.apply(fill(a, "buy", "1", "42", idem="fill-f1", decision_id="f1"))
        store.save_decision(decision(a, "f2", "approved", 2))
        with pytest.raises(DuplicateEntry):  # undoes only itself, not the decisions before it
            ledger.apply(fill(a, "buy", "1", "43", idem="fill-f1", decision_id="f2"))
    rec = store.get_decision("f1")
    assert rec is not None and (rec.status, rec.price) == ("executed", D(42))
    rec = store.get_decision("f2")
    assert rec is not None and (rec.status, rec.price) == ("approved", None)
    assert count(store, TradeRow) == 1


# ----------------------------------------------------------------------------- trades


def test_trades_filter_by_agent_and_symbol_with_pagination(store: Store) -> None:
    ledger = Ledger(on_commit=store.commit_entry)
    a = add_agent(store, ledger, "alpha")
    b = add_agent(store, ledger, "beta")
    for i in range(5):
        ledger.apply(fill(a, "buy", "1", "100", time=T0 + timedelta(minutes=i)))
    ledger.apply(fill(a, "buy", "1", "10", symbol="ETH", time=T0 + timedelta(minutes=10)))
    ledger.apply(fill(b, "buy", "2", "100", time=T0 + timedelta(minutes=20)))

    rows, total = store.trades()
    assert total == 7 and len(rows) == 7
    assert [r["time"] for r in rows] == sorted((r["time"] for r in rows), reverse=True)
    assert rows[0]["agent_name"] == "beta" and rows[0]["notional"] == D(200)

    rows, total = store.trades(agent_id=a.id)
    assert total == 6 and {r["agent_id"] for r in rows} == {a.id}

    rows, total = store.trades(agent_id=a.id, symbol="BTC", limit=2, offset=1)
    assert total == 5
    assert len(rows) == 2
    assert [r["time"] for r in rows] == [T0 + timedelta(minutes=3), T0 + timedelta(minutes=2)]
    assert all(r["symbol"] == "BTC" and r["agent_name"] == "alpha" for r in rows)

    rows, total = store.trades(symbol="ETH")
    assert total == 1 and rows[0]["price"] == D(10) and rows[0]["side"] == "buy"

    rows, total = store.trades(agent_id=b.id, symbol="ETH")
    assert (rows, total) == ([], 0)

    rows, total = store.trades(limit=3, offset=6)
    assert total == 7 and len(rows) == 1


def test_used_keys_contains_every_fill_key(store: Store) -> None:
    ledger = Ledger(on_commit=store.commit_entry)
    a = add_agent(store, ledger)
    ledger.apply(fill(a, "buy", "1", "100", idem="f-1"))
    ledger.apply(fill(a, "sell", "1", "100", idem="f-2"))
    assert {"f-1", "f-2"} <= store.used_keys()


# ----------------------------------------------------------------------------- state


def test_state_get_and_set(store: Store) -> None:
    assert store.get_state("kill_switch") is None
    store.set_state("kill_switch", {"on": True, "reason": "manual"})
    assert store.get_state("kill_switch") == {"on": True, "reason": "manual"}
    store.set_state("kill_switch", {"on": False})
    assert store.get_state("kill_switch") == {"on": False}
    store.set_state("replay", {"cursor": "2024-01-01T00:00:00+00:00", "n": [1, 2]})
    assert store.get_state("replay") == {"cursor": "2024-01-01T00:00:00+00:00", "n": [1, 2]}
    assert store.get_state("kill_switch") == {"on": False}
