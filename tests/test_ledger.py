"""Unit tests for the ledger: fill and deposit arithmetic, validation, the commit hook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, getcontext, localcontext

import pytest

from phantomex.domain.models import Deposit, Fill, Side, Wallet
from phantomex.domain.money import MONEY_CONTEXT
from phantomex.ledger.ledger import Ledger, LedgerError, apply_deposit, apply_fill
from phantomex.ledger.reconcile import compare, rebuild, reconcile

D = Decimal
T0 = datetime(2024, 1, 1, tzinfo=UTC)
AGENT = "a1"

_key_counter = 0


def _key() -> str:
    global _key_counter
    _key_counter += 1
    return f"k{_key_counter}"


def fill(
    side: Side | str,
    qty: Decimal | str,
    price: Decimal | str,
    fee: Decimal | str = "0",
    *,
    symbol: str = "BTC",
    agent: str = AGENT,
    time: datetime = T0,
    key: str | None = None,
) -> Fill:
    return Fill(
        agent_id=agent,
        symbol=symbol,
        side=Side(side),
        quantity=D(qty),
        price=D(price),
        fee=D(fee),
        time=time,
        idempotency_key=key or _key(),
    )


def deposit(amount: Decimal | str, *, initial: bool = False, agent: str = AGENT) -> Deposit:
    return Deposit(agent, D(amount), T0, _key(), initial)


def funded_ledger(amount: str = "10000", **kwargs: object) -> Ledger:
    ledger = Ledger(**kwargs)  # type: ignore[arg-type]
    ledger.open_wallet(deposit(amount, initial=True))
    return ledger


def snapshot(w: Wallet) -> tuple[object, ...]:
    """Every field of a wallet, positions included, for before/after comparisons."""
    return (
        w.agent_id,
        w.allowance,
        w.cash,
        w.deposits,
        w.realized_pnl,
        w.fees_paid,
        w.version,
        sorted((s, p.quantity, p.cost, p.opened_at) for s, p in w.positions.items()),
    )


# ----------------------------------------------------------------------------- buys and sells


def test_buy_moves_cash_into_cost_basis_including_fee() -> None:
    ledger = funded_ledger()
    w = ledger.apply(fill("buy", "2", "1000", "2"))
    assert w.cash == D("7998")
    pos = w.positions["BTC"]
    assert pos.quantity == D(2)
    assert pos.cost == D("2002")
    assert pos.avg_cost == D("1001")
    assert pos.opened_at == T0
    assert w.fees_paid == D(2)
    assert w.realized_pnl == 0
    assert w.version == 2  # the allowance was entry 1


def test_second_buy_averages_cost_and_keeps_opened_at() -> None:
    ledger = funded_ledger()
    ledger.apply(fill("buy", "1", "1000", "1"))
    w = ledger.apply(fill("buy", "3", "2000", "6", time=T0 + timedelta(hours=1)))
    pos = w.positions["BTC"]
    assert pos.quantity == D(4)
    assert pos.cost == D("7007")
    assert pos.avg_cost == D("1751.75")
    assert pos.opened_at == T0
    assert w.cash == D(10000) - D(7007)


def test_partial_sell_books_realized_pnl_net_of_fee_and_removed_basis() -> None:
    ledger = funded_ledger()
    ledger.apply(fill("buy", "4", "1000", "4"))  # cost 4004, avg 1001
    w = ledger.apply(fill("sell", "1", "1200", "1.2"))
    # proceeds 1198.8, removed basis 1001 -> realized 197.8
    assert w.cash == D(10000) - D(4004) + D("1198.8")
    assert w.realized_pnl == D("197.8")
    pos = w.positions["BTC"]
    assert pos.quantity == D(3)
    assert pos.cost == D(3003)
    assert pos.avg_cost == D(1001)
    assert w.fees_paid == D("5.2")


def test_losing_sell_books_negative_realized_pnl() -> None:
    ledger = funded_ledger()
    ledger.apply(fill("buy", "2", "100", "0.2"))  # cost 200.2
    w = ledger.apply(fill("sell", "2", "90", "0.18"))  # proceeds 179.82
    assert w.realized_pnl == D("179.82") - D("200.2")
    assert w.cash == D(10000) - D("200.2") + D("179.82")
    assert w.realized_pnl < 0


def test_selling_everything_removes_the_position_and_all_its_basis() -> None:
    ledger = funded_ledger()
    ledger.apply(fill("buy", "3", "1", "0"))  # cost 3, avg 1
    ledger.apply(fill("sell", "1", "1", "0"))
    w = ledger.apply(fill("sell", "2", "1", "0"))
    assert "BTC" not in w.positions
    assert w.quantity("BTC") == 0
    assert w.cash == D(10000)
    assert w.realized_pnl == 0


def test_full_sell_with_non_terminating_average_leaves_no_residual_basis() -> None:
    ledger = funded_ledger()
    ledger.apply(fill("buy", "3", "1", "1"))  # cost 4, avg 1.333...
    ledger.apply(fill("sell", "1", "2", "0"))
    w = ledger.apply(fill("sell", "2", "2", "0"))
    assert w.positions == {}
    # everything put in, everything taken out: realized = 6 - 4
    assert w.realized_pnl == D(2)
    assert w.cash == D(10002)


def test_positions_in_several_symbols_are_independent() -> None:
    ledger = funded_ledger()
    ledger.apply(fill("buy", "1", "100", symbol="BTC"))
    ledger.apply(fill("buy", "2", "10", symbol="ETH"))
    w = ledger.apply(fill("sell", "1", "100", symbol="BTC"))
    assert set(w.positions) == {"ETH"}
    assert w.positions["ETH"].quantity == 2
    assert w.cash == D(10000) - D(20)


def test_buy_costing_exactly_all_cash_is_allowed() -> None:
    ledger = funded_ledger("1001")
    w = ledger.apply(fill("buy", "1", "1000", "1"))
    assert w.cash == 0
    assert w.positions["BTC"].cost == D(1001)


# ----------------------------------------------------------------------------- rejections


def _invalid_fills() -> list[tuple[str, Fill]]:
    return [
        ("buy above cash", fill("buy", "10", "1000", "0.01")),
        ("buy of exactly cash but fee tips over", fill("buy", "1", "10000", "0.0001")),
        ("sell more than held", fill("sell", "1.5", "100")),
        ("sell of unheld symbol", fill("sell", "1", "100", symbol="ETH")),
        ("zero quantity", fill("buy", "0", "100")),
        ("negative quantity", fill("buy", "-1", "100")),
        ("negative sell quantity", fill("sell", "-1", "100")),
        ("infinite quantity", fill("buy", "Infinity", "100")),
        ("zero price", fill("buy", "1", "0")),
        ("negative price", fill("buy", "1", "-100")),
        ("NaN price", fill("buy", "1", "NaN")),
        ("infinite price", fill("sell", "1", "Infinity")),
        ("negative fee", fill("buy", "1", "100", "-0.1")),
        ("infinite fee", fill("buy", "1", "100", "Infinity")),
        ("fee above proceeds", fill("sell", "1", "100", "100.01")),
        ("other agent", fill("buy", "1", "100", agent="someone-else")),
    ]


@pytest.mark.parametrize(("name", "bad"), _invalid_fills(), ids=[n for n, _ in _invalid_fills()])
def test_invalid_fill_is_rejected_and_wallet_unchanged(name: str, bad: Fill) -> None:
    ledger = funded_ledger()
    ledger.apply(fill("buy", "1", "100", "0.1"))
    before = snapshot(ledger.wallet(AGENT))
    hook_calls: list[object] = []
    ledger._on_commit = lambda *a: hook_calls.append(a)
    with pytest.raises(LedgerError):
        ledger.apply(bad)
    assert snapshot(ledger.wallet(AGENT)) == before
    assert hook_calls == []


def test_fill_for_a_wallet_that_does_not_exist_is_rejected() -> None:
    ledger = Ledger()
    with pytest.raises(LedgerError):
        ledger.apply(fill("buy", "1", "1"))


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_nan_quantity_is_a_ledger_error(side: str) -> None:
    ledger = funded_ledger()
    ledger.apply(fill("buy", "1", "100"))
    before = snapshot(ledger.wallet(AGENT))
    try:
        with pytest.raises(LedgerError):
            ledger.apply(fill(side, "NaN", "100"))
    finally:
        assert snapshot(ledger.wallet(AGENT)) == before


def test_nan_fee_is_a_ledger_error() -> None:
    ledger = funded_ledger()
    with pytest.raises(LedgerError):
        ledger.apply(fill("buy", "1", "100", "NaN"))


def test_nan_deposit_is_a_ledger_error() -> None:
    ledger = funded_ledger()
    with pytest.raises(LedgerError):
        ledger.deposit(deposit("NaN"))


def test_apply_fill_does_not_modify_its_input() -> None:
    w = apply_deposit(Wallet(AGENT), deposit("100", initial=True))
    w = apply_fill(w, fill("buy", "1", "10", "1"))
    before = snapshot(w)
    new = apply_fill(w, fill("sell", "0.5", "20", "0"))
    assert snapshot(w) == before
    assert new.positions["BTC"].quantity == D("0.5")
    assert w.positions["BTC"].quantity == D(1)


# ----------------------------------------------------------------------------- deposits


def test_open_wallet_books_the_allowance() -> None:
    ledger = Ledger()
    w = ledger.open_wallet(deposit("5000", initial=True))
    assert (w.allowance, w.deposits, w.cash, w.funding, w.version) == (
        D(5000),
        D(0),
        D(5000),
        D(5000),
        1,
    )


def test_later_deposits_add_to_deposits_not_allowance() -> None:
    ledger = funded_ledger("5000")
    w = ledger.deposit(deposit("250.5"))
    assert w.allowance == D(5000)
    assert w.deposits == D("250.5")
    assert w.cash == D("5250.5")
    assert w.funding == D("5250.5")
    assert w.version == 2


def test_open_wallet_requires_an_initial_deposit_and_only_once() -> None:
    ledger = Ledger()
    with pytest.raises(LedgerError):
        ledger.open_wallet(deposit("100", initial=False))
    assert not ledger.has_wallet(AGENT)
    ledger.open_wallet(deposit("100", initial=True))
    with pytest.raises(LedgerError):
        ledger.open_wallet(deposit("100", initial=True))
    assert ledger.wallet(AGENT).cash == D(100)


@pytest.mark.parametrize("amount", ["0", "-1", "Infinity", "-Infinity"])
def test_non_positive_or_infinite_deposit_is_rejected(amount: str) -> None:
    ledger = funded_ledger("100")
    before = snapshot(ledger.wallet(AGENT))
    with pytest.raises(LedgerError):
        ledger.deposit(deposit(amount))
    assert snapshot(ledger.wallet(AGENT)) == before


def test_open_wallet_persist_failure_leaves_no_wallet() -> None:
    ledger = Ledger()

    def persist(_w: Wallet) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        ledger.open_wallet(deposit("100", initial=True), persist=persist)
    assert not ledger.has_wallet(AGENT)


def test_open_wallet_persist_receives_the_funded_wallet() -> None:
    seen: list[Wallet] = []
    ledger = Ledger()
    ledger.open_wallet(deposit("100", initial=True), persist=seen.append)
    assert len(seen) == 1
    assert seen[0].cash == D(100) and seen[0].allowance == D(100) and seen[0].version == 1


# ----------------------------------------------------------------------------- commit hook


def test_commit_hook_sees_entry_before_and_after() -> None:
    calls: list[tuple[Fill | Deposit, Wallet, Wallet]] = []
    ledger = Ledger(on_commit=lambda e, b, a: calls.append((e, b.copy(), a.copy())))
    ledger.open_wallet(deposit("1000", initial=True))
    assert calls == []  # opening goes through persist, not the hook
    f = fill("buy", "2", "100", "0.2")
    result = ledger.apply(f)
    assert len(calls) == 1
    entry, before, after = calls[0]
    assert entry is f
    assert before.cash == D(1000) and before.version == 1 and before.positions == {}
    assert after.cash == D("799.8") and after.version == 2
    assert after.positions["BTC"].quantity == 2
    assert snapshot(after) == snapshot(result)
    dep = deposit("5")
    ledger.deposit(dep)
    assert calls[1][0] is dep
    assert calls[1][1].cash == D("799.8")
    assert calls[1][2].cash == D("804.8")


def test_commit_hook_failure_leaves_live_wallet_untouched() -> None:
    fail = {"on": False}

    def hook(_e: Fill | Deposit, _b: Wallet, _a: Wallet) -> None:
        if fail["on"]:
            raise RuntimeError("database is locked")

    ledger = Ledger(on_commit=hook)
    ledger.open_wallet(deposit("1000", initial=True))
    ledger.apply(fill("buy", "1", "100"))
    before = snapshot(ledger.wallet(AGENT))
    fail["on"] = True
    with pytest.raises(RuntimeError):
        ledger.apply(fill("buy", "1", "100"))
    with pytest.raises(RuntimeError):
        ledger.apply(fill("sell", "1", "100"))
    with pytest.raises(RuntimeError):
        ledger.deposit(deposit("10"))
    assert snapshot(ledger.wallet(AGENT)) == before
    fail["on"] = False
    w = ledger.apply(fill("sell", "1", "100"))
    assert w.version == 3  # the failed entries did not consume versions
    assert w.positions == {}


def test_apply_returns_a_copy_of_the_new_wallet() -> None:
    ledger = Ledger(on_commit=lambda e, b, a: None)
    ledger.open_wallet(deposit("1000", initial=True))
    w = ledger.apply(fill("buy", "1", "100"))
    w.cash = D(0)
    w.positions["BTC"].quantity = D(999)
    assert ledger.wallet(AGENT).cash == D(900)
    assert ledger.wallet(AGENT).positions["BTC"].quantity == D(1)


# ----------------------------------------------------------------------------- copies


def test_wallet_returns_a_copy() -> None:
    ledger = funded_ledger()
    ledger.apply(fill("buy", "1", "100"))
    w = ledger.wallet(AGENT)
    w.cash = D(1)
    w.realized_pnl = D(5)
    w.positions["BTC"].quantity = D(50)
    w.positions["BTC"].cost = D(0)
    w.positions["ETH"] = w.positions["BTC"]
    fresh = ledger.wallet(AGENT)
    assert fresh.cash == D(9900)
    assert fresh.realized_pnl == 0
    assert set(fresh.positions) == {"BTC"}
    assert fresh.positions["BTC"].quantity == D(1)
    assert fresh.positions["BTC"].cost == D(100)


def test_wallet_of_unknown_agent_raises() -> None:
    with pytest.raises(LedgerError):
        Ledger().wallet("nobody")


def test_restore_and_close_wallet() -> None:
    src = funded_ledger()
    src.apply(fill("buy", "1", "100"))
    w = src.wallet(AGENT)
    dst = Ledger()
    dst.restore(w)
    w.cash = D(0)  # restore keeps its own copy
    assert dst.wallet(AGENT).cash == D(9900)
    assert dst.agent_ids() == [AGENT]
    dst.close_wallet(AGENT)
    assert not dst.has_wallet(AGENT)


# ----------------------------------------------------------------------------- reconcile


def test_rebuild_matches_live_wallet_and_detects_tampering() -> None:
    entries: list[Fill | Deposit] = []
    ledger = Ledger(on_commit=lambda e, b, a: entries.append(e))
    allowance = deposit("1000", initial=True)
    ledger.open_wallet(allowance)
    entries.insert(0, allowance)
    ledger.apply(fill("buy", "3", "33.3", "0.0999"))
    ledger.deposit(deposit("50"))
    ledger.apply(fill("sell", "1", "40", "0.04"))
    live = ledger.wallet(AGENT)
    assert compare(rebuild(AGENT, entries), live) == []
    assert reconcile({AGENT: live}, {AGENT: entries}) == []

    tampered = live.copy()
    tampered.cash += D("0.01")
    tampered.positions["BTC"].quantity = D(3)
    found = reconcile({AGENT: tampered}, {AGENT: entries})
    assert {m.field for m in found} == {"cash", "BTC.quantity"}
    assert all(m.agent_id == AGENT for m in found)


def test_reconcile_reports_missing_wallet_and_invalid_history() -> None:
    good: list[Fill | Deposit] = [deposit("10", initial=True, agent="x")]
    bad: list[Fill | Deposit] = [
        deposit("10", initial=True, agent="y"),
        fill("sell", "1", "1", agent="y"),
    ]
    found = reconcile({"z": Wallet("z", cash=D(5))}, {"x": good, "y": bad})
    by_agent = {m.agent_id: m.field for m in found}
    assert by_agent == {"x": "wallet", "y": "history", "z": "cash"}


# ----------------------------------------------------------------------------- P&L identity


def test_equity_values_unmarked_holdings_at_cost() -> None:
    ledger = funded_ledger()
    ledger.apply(fill("buy", "2", "100", "0.2", symbol="BTC"))
    w = ledger.apply(fill("buy", "1", "50", "0", symbol="ETH"))
    marks = {"BTC": D(110)}
    assert w.holdings_value(marks) == D(220) + D(50)
    assert w.equity(marks) == w.cash + D(270)
    assert w.unrealized_pnl(marks) == D(220) - D("200.2")
    assert w.equity(marks) - w.funding == w.realized_pnl + w.unrealized_pnl(marks)


def test_funding_identity_holds_to_the_28th_digit_for_btc_trades() -> None:
    """Position's docstring: realized + unrealized P&L adds up to equity minus funding up to
    Decimal's 28th significant digit (partial sells divide the cost basis)."""
    ledger = funded_ledger("100000")
    trades = [
        ("buy", "0.3", "40000.01"),
        ("sell", "0.1", "41000"),
        ("buy", "0.3", "42000.55"),
        ("sell", "0.11", "39000.5"),
        ("buy", "0.123", "41234.56"),
        ("sell", "0.2", "40000"),
    ]
    for side, q, p in trades:
        w = ledger.apply(fill(side, q, p, D(q) * D(p) * 10 / 10000))
        marks = {"BTC": D(p)}
        with localcontext() as ctx:
            ctx.prec = 200  # evaluate the identity itself without rounding
            lhs = w.equity(marks) - w.funding
            rhs = w.realized_pnl + w.unrealized_pnl(marks)
        assert abs(lhs - rhs) <= D("1e-22"), (side, q, p, lhs - rhs)


def test_a_library_changing_the_decimal_context_cannot_skew_a_wallet() -> None:
    """ccxt sets ROUND_HALF_UP on the current context; the wallet must still round exactly like
    the replay of its history in the default context (a 1-ulp drift failed the kill loop)."""
    bought = [Decimal("0.1234567890123456789") / (i + 1) for i in range(20)]
    fills = [
        Fill(
            agent_id="a",
            symbol="BTC",
            side=Side.BUY if i % 2 == 0 else Side.SELL,
            quantity=bought[i] if i % 2 == 0 else bought[i - 1],
            price=Decimal("28123.4567") + i,
            fee=Decimal("2.718281828459045235360287471") / (i + 3),
            time=datetime(2023, 4, 1, tzinfo=UTC) + timedelta(minutes=i),
            idempotency_key=f"k{i}",
        )
        for i in range(20)
    ]
    deposit = Deposit("a", Decimal("10000"), fills[0].time, "d0", initial=True)
    with localcontext() as ctx:
        ctx.rounding = ROUND_DOWN  # what another library might leave behind
        wallet = apply_deposit(Wallet(agent_id="a"), deposit)
        for fill in fills:
            wallet = apply_fill(wallet, fill)
    assert wallet.version == 21
    expected = rebuild("a", [deposit, *fills])
    assert (wallet.cash, wallet.fees_paid, wallet.realized_pnl) == (
        expected.cash,
        expected.fees_paid,
        expected.realized_pnl,
    )


def test_ledger_math_gives_the_caller_its_own_decimal_context_back() -> None:
    """The ledger computes in MONEY_CONTEXT and puts the caller's context back, after a
    refused fill too; MONEY_CONTEXT itself is left as it was."""
    with localcontext() as ctx:
        ctx.rounding, ctx.prec = ROUND_DOWN, 9
        wallet = apply_deposit(Wallet(agent_id=AGENT), deposit("100", initial=True))
        assert getcontext() is ctx
        bought = apply_fill(wallet, fill("buy", "0.3", "33.33333333333", "0"))
        assert getcontext() is ctx
        with pytest.raises(LedgerError):
            apply_fill(bought, fill("sell", "1", "10"))
        assert getcontext() is ctx
        assert (ctx.rounding, ctx.prec) == (ROUND_DOWN, 9)
    # computed with 28 digits, not the caller's 9
    assert bought.cash == D(100) - D("0.3") * D("33.33333333333")
    assert (MONEY_CONTEXT.prec, MONEY_CONTEXT.rounding) == (28, "ROUND_HALF_EVEN")
