"""The one formatting rule (``phantomex.formatting``): prices, quantities, money, returns,
latencies and times as a person reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phantomex import formatting as fmt

MONEY = st.decimals(
    min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=8, allow_nan=False
)
PRICES = st.decimals(
    min_value=Decimal("1e-9"), max_value=Decimal("1e9"), places=12, allow_nan=False
)


def parse_money(text: str) -> Decimal:
    """Back from ``−$1,234.56`` to a Decimal."""
    sign = -1 if text.startswith("−") else 1
    return sign * Decimal(text.lstrip("+−").removeprefix("$").replace(",", ""))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0.5095", "0.5095"),  # XRP: four significant digits, not 0.51
        ("27123.4567", "27,123.46"),
        ("21.1", "21.10"),
        ("0.00001234", "0.00001234"),  # a meme coin keeps its digits
        ("0", "0.00"),
        ("1E-30", "1.000E-30"),  # far below any tick: says how small
        (None, "—"),
        ("NaN", "—"),
        ("garbage", "—"),
    ],
)
def test_price_keeps_four_significant_digits(value: str | None, shown: str) -> None:
    assert fmt.price(value) == shown


def test_price_to_the_instruments_tick() -> None:
    tick = fmt.tick_of(["0.5095", "0.51", "0.5"])  # closes as the data quotes them
    assert tick == Decimal("0.0001")
    assert fmt.price("0.51", tick) == "0.5100"
    assert fmt.price("27123.456", fmt.tick_of(["27123.45", "27000"])) == "27,123.46"
    assert fmt.tick_of([]) is None


@pytest.mark.parametrize(
    ("value", "shown", "signed"),
    [
        ("-3.24", "−$3.24", "−$3.24"),  # the best trade of a losing session
        ("1234.5", "$1,234.50", "+$1,234.50"),
        ("-1234567.891", "−$1,234,567.89", "−$1,234,567.89"),
        ("-0.001", "$0.00", "$0.00"),  # rounds to zero: no sign
        ("0.005", "$0.01", "+$0.01"),  # half up
    ],
)
def test_money_has_its_currency_separators_and_the_sign_first(
    value: str, shown: str, signed: str
) -> None:
    assert fmt.money(value) == shown
    assert fmt.money(value, sign=True) == signed


def test_money_exact_and_other_currencies() -> None:
    assert fmt.money("0.005", exact=True) == "$0.005"
    assert fmt.money("1000", exact=True) == "$1,000.00"
    assert fmt.money("-12", "CHF") == "−CHF 12.00"
    assert fmt.money("12", "eur") == "€12.00"


@given(MONEY)
def test_money_round_trips_to_the_cent(value: Decimal) -> None:
    shown = fmt.money(value)
    assert parse_money(shown) == value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    negative = parse_money(shown) < 0
    assert shown.startswith("−$") == negative
    assert "$-" not in shown and "$+" not in shown
    assert parse_money(fmt.money(value, sign=True)) == parse_money(shown)


@given(PRICES)
def test_price_round_trips_within_half_its_last_digit(value: Decimal) -> None:
    shown = fmt.price(value)
    back = Decimal(shown.replace(",", ""))
    places = -back.as_tuple().exponent if "E" not in shown else 0
    assert isinstance(places, int)
    if "E" not in shown:
        assert abs(back - value) <= Decimal(1).scaleb(-places) / 2
        significant = len(shown.replace(",", "").replace(".", "").lstrip("0"))
        assert significant >= 4 or places == fmt.MAX_DECIMALS


@given(st.decimals(min_value=Decimal("1e-12"), max_value=Decimal("1e12"), places=12))
def test_quantity_keeps_eight_significant_digits(value: Decimal) -> None:
    shown = fmt.quantity(value)
    back = Decimal(shown.replace(",", ""))
    assert abs(back - value) <= abs(value) * Decimal("1e-7") + Decimal("5e-9")
    assert value == 0 or back != 0  # a dust quantity is not shown as nothing


def test_quantity() -> None:
    assert fmt.quantity("29932.95019157088122605363985") == "29,932.95"
    assert fmt.quantity("0.0123") == "0.0123"
    assert fmt.quantity("3.2980768E-10") == "3.2980768E-10"
    assert fmt.quantity(0) == "0"


@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
        lambda d: abs(d) < Decimal("1e19")
    )
)
def test_quantity_is_the_fixed_rule_text(value: Decimal) -> None:
    """The quantity's fast text is the general rule's: eight significant digits half-up, at
    most eight decimals, separators, the minus sign, trailing zeros dropped."""
    if value == 0 or abs(value) < Decimal("5e-9"):
        return
    places = min(8, max(0, 7 - value.adjusted()))
    q = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = f"{abs(q):,.{places}f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    assert fmt.quantity(value) == ("−" if q < 0 else "") + text


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("999.999995", "1,000"),
        ("-999.99999", "−999.99999"),
        ("0.00000123456789", "0.00000123"),
        ("0.000000995", "0.000001"),
        ("-0.000000005", "−0.00000001"),
        ("99999999.5", "100,000,000"),
        ("1234.5", "1,234.5"),
        ("Infinity", "—"),
    ],
)
def test_quantity_edges(value: str, shown: str) -> None:
    assert fmt.quantity(Decimal(value)) == shown


def test_returns_are_percent_everywhere() -> None:
    assert fmt.percent("0.0123", fraction=True) == "+1.23%"
    assert fmt.percent("-12.7") == "−12.70%"
    assert fmt.percent(0) == "0.00%"
    assert fmt.percent(0.5, fraction=True, places=0, sign=False) == "50%"
    assert fmt.metric(-0.127, "pct") == "−12.70%"
    assert fmt.metric(0.55, "share") == "55.00%"
    assert fmt.metric("10034.1234567890123456789012345", "money") == "$10,034.12"
    assert fmt.metric(1.23456, "ratio") == "1.23"
    assert fmt.metric(1234, "int") == "1,234"
    assert fmt.metric(93784, "duration") == "1d 2h 3m"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0116, "11.6 ms"),
        (0.116, "116 ms"),
        (0.0015, "1.50 ms"),
        (0.9996, "1.00 s"),  # rounds up into seconds, not "1,000 ms"
        (1.234, "1.23 s"),
        (123.4, "123 s"),
        (0, "0 ms"),
        (None, "—"),
    ],
)
def test_latency(seconds: float | None, shown: str) -> None:
    assert fmt.latency(seconds) == shown


def test_times_are_utc_to_the_second() -> None:
    assert fmt.when("2023-04-01T21:03:00.123456Z") == "2023-04-01 21:03:00"
    berlin = datetime(2023, 4, 1, 23, 3, 0, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert fmt.when(berlin) == "2023-04-01 21:03:00"
    assert fmt.when(datetime(2023, 4, 1, tzinfo=UTC)) == "2023-04-01 00:00:00"
    assert fmt.when(None) == "—"
    assert fmt.when("not a time") == "not a time"
