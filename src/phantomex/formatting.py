"""One way to show numbers and times to a person: the CLI's tables, reports and summaries.

- **Prices** to the instrument's precision (its tick) where known, else to at least four
  significant digits and two decimals: ``27,123.45``, ``0.5095``, ``0.00001234``.
- **Quantities** to eight significant digits, at most eight decimals: ``29,932.95``.
- **Money** in its currency, with separators and the sign before the symbol: ``$1,234.56``,
  ``−$3.24`` (``+$3.24`` where a sign is asked for).
  The minus is the minus sign (U+2212), as in the dashboard.
- **Returns** in percent, always: ``+1.23%``; fractions (0.0123) say so with ``fraction=True``.
- **Latencies** in milliseconds below a second: ``11.6 ms``, ``1.23 s``.
- **Times** in UTC to the second, no microseconds: ``2023-04-01 21:03:00``.

JSON output never goes through here: it keeps exact numbers and ISO times.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

MISSING = "—"
MINUS = "\u2212"  # the minus sign, as the dashboard writes it: "−$3.24"
PRICE_SIGNIFICANT = 4  # a price without a known tick keeps at least this many digits
QUANTITY_SIGNIFICANT = 8
MAX_DECIMALS = 12
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}
_STEPS = {p: Decimal(1).scaleb(-p) for p in range(MAX_DECIMALS + 1)}  # 1, 0.1, ... 1E-12
_TINY_QUANTITY = Decimal("0.000000005")  # rounds to zero at eight decimals


def to_decimal(value: Any) -> Decimal | None:
    """``value`` as a finite Decimal (floats through their shortest repr), else None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def places_of(tick: Decimal) -> int:
    """Decimals of a tick size: 0.01 → 2, 0.0001 → 4, 1 → 0, 5 → 0."""
    exponent = tick.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return min(MAX_DECIMALS, max(0, -exponent))


def tick_of(values: Iterable[Any]) -> Decimal | None:
    """The finest precision among recorded prices (their tick where the data is quoted in it),
    or None when there is no price."""
    finest: int | None = None
    for value in values:
        d = to_decimal(value)
        if d is None or d == 0:
            continue
        exponent = d.normalize().as_tuple().exponent
        assert isinstance(exponent, int)
        finest = exponent if finest is None else min(finest, exponent)
    if finest is None:
        return None
    return Decimal(1).scaleb(max(finest, -MAX_DECIMALS))


def _fixed(d: Decimal, places: int, *, sign: bool = False, group: bool = True) -> str:
    """``d`` rounded half-up to ``places`` decimals; no sign on a value that rounds to zero."""
    step = _STEPS.get(places)
    q = d.quantize(step or Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    body = f"{abs(q):,.{places}f}" if group else f"{abs(q):.{places}f}"
    if q == 0:
        return body
    return (MINUS if q < 0 else "+" if sign else "") + body


def price_places(d: Decimal) -> int:
    """Decimals that keep :data:`PRICE_SIGNIFICANT` digits of ``d`` (at least two)."""
    if d == 0:
        return 2
    return min(MAX_DECIMALS, max(2, PRICE_SIGNIFICANT - 1 - d.copy_abs().adjusted()))


def price(value: Any, tick: Decimal | None = None) -> str:
    """A price to ``tick``'s precision, else to :data:`PRICE_SIGNIFICANT` significant digits."""
    d = to_decimal(value)
    if d is None:
        return MISSING
    if not tick and d != 0 and PRICE_SIGNIFICANT - 1 - d.copy_abs().adjusted() > MAX_DECIMALS:
        return f"{d:.{PRICE_SIGNIFICANT - 1}E}"  # below any real tick: say how small
    return _fixed(d, places_of(tick) if tick else price_places(d))


def quantity(value: Any) -> str:
    """A quantity to :data:`QUANTITY_SIGNIFICANT` significant digits (at most eight decimals),
    without trailing zeros."""
    d = value if type(value) is Decimal and value.is_finite() else to_decimal(value)
    if d is None:
        return MISSING
    if not d:
        return "0"
    size = d.copy_abs()
    if size < _TINY_QUANTITY:  # below eight decimals: say how small
        return f"{d.normalize():E}"
    places = min(8, max(0, QUANTITY_SIGNIFICANT - 1 - size.adjusted()))
    # half-up rounds the size as it rounds the signed value; never to zero above the tiny
    q = size.quantize(_STEPS[places], rounding=ROUND_HALF_UP)
    if places:  # str() is the plain fixed text below 1,000 and from 1E-6 on, and cheaper
        text = str(q)
        if "E" in text or text.index(".") > 3:
            text = format(q, ",f")
        text = text.rstrip("0").rstrip(".")
    else:
        text = format(q, ",f")
    return MINUS + text if d < 0 else text


def money(value: Any, currency: str = "USD", *, sign: bool = False, exact: bool = False) -> str:
    """``$1,234.56``, ``−$3.24``; with ``sign`` a gain reads ``+$3.24``; ``exact`` keeps the
    digits beyond the cent of an amount a person gave (``$0.005``). Other currencies without a
    symbol read ``CHF 12.00``."""
    d = to_decimal(value)
    if d is None:
        return MISSING
    places = max(2, places_of(d)) if exact and d else 2
    text = _fixed(d, places, sign=sign)
    symbol = CURRENCY_SYMBOLS.get(currency.upper(), f"{currency.upper()} ")
    if text[0] in (MINUS, "+"):
        return f"{text[0]}{symbol}{text[1:]}"
    return f"{symbol}{text}"


def percent(value: Any, *, fraction: bool = False, places: int = 2, sign: bool = True) -> str:
    """A return or share in percent: ``+1.23%``. ``fraction`` says the value is 0.0123."""
    d = to_decimal(value)
    if d is None:
        return MISSING
    return _fixed(d * 100 if fraction else d, places, sign=sign, group=False) + "%"


def number(value: Any, places: int = 2) -> str:
    """A plain figure (a ratio such as Sharpe): ``1.23``, ``-0.45``."""
    d = to_decimal(value)
    return MISSING if d is None else _fixed(d, places)


def count(value: Any) -> str:
    """A whole number with separators: ``1,234``."""
    d = to_decimal(value)
    return MISSING if d is None else _fixed(d, 0)


MetricKind = Literal["money", "pct", "share", "ratio", "int", "duration"]


def metric(value: Any, kind: MetricKind) -> str:
    """A performance figure: ``money``; ``pct`` a signed return and ``share`` an unsigned share
    (both given as fractions); ``ratio`` (Sharpe, profit factor); ``int`` a count;
    ``duration`` seconds as ``2d 3h 15m``."""
    if kind == "money":
        return money(value)
    if kind in ("pct", "share"):
        return percent(value, fraction=True, sign=kind == "pct")
    if kind == "int":
        return count(value)
    if kind == "duration":
        return duration(value)
    return number(value)


def duration(seconds: Any) -> str:
    """A span to the minute: ``2d 3h 15m``, ``3h 15m``, ``15m``."""
    d = to_decimal(seconds)
    if d is None:
        return MISSING
    days, rest = divmod(int(d), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def latency(seconds: Any) -> str:
    """A duration of a call to three significant digits: ``11.6 ms`` below a second,
    ``1.23 s`` from a second on."""
    d = to_decimal(seconds)
    if d is None:
        return MISSING
    if d == 0:
        return "0 ms"
    d = d.quantize(Decimal(1).scaleb(d.adjusted() - 2), rounding=ROUND_HALF_UP)
    value, unit = (d * 1000, "ms") if abs(d) < 1 else (d, "s")
    return f"{_fixed(value, max(0, 2 - value.adjusted()))} {unit}"


def when(value: Any) -> str:
    """A time in UTC to the second: ``2023-04-01 21:03:00``. Takes a datetime or an ISO string
    (a string that is no time comes back as it is)."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}"
