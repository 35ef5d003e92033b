"""Symbol names: PhantomEx trades base assets (``BTC``) priced in a quote; exchanges name pairs.

ccxt's unified pair is ``BASE/QUOTE`` (``BTC/USDT``); the kernel and agents use ``BTC``."""

from __future__ import annotations

import re

_ASSET = re.compile(r"^[A-Z0-9]{1,20}$")


def to_pair(symbol: str, quote: str) -> str:
    """``BTC`` (or ``btc``, or an already-paired ``BTC/USDT``) → ``BTC/USDT``.

    Raises ValueError for an empty or malformed name, or a pair in another quote."""
    symbol, quote = symbol.strip().upper(), quote.strip().upper()
    if not _ASSET.match(quote):
        raise ValueError(f"bad quote currency {quote!r}")
    base, sep, pair_quote = symbol.partition("/")
    if sep and pair_quote != quote:
        raise ValueError(f"{symbol!r} is not quoted in {quote}")
    if not _ASSET.match(base):
        raise ValueError(f"bad symbol {symbol!r}")
    return f"{base}/{quote}"


def from_pair(pair: str, quote: str) -> str | None:
    """``BTC/USDT`` → ``BTC`` when it is quoted in ``quote``; None for any other pair.

    Derivative suffixes (``BTC/USDT:USDT``) are not spot pairs and give None."""
    base, sep, pair_quote = pair.upper().partition("/")
    if not sep or pair_quote != quote.upper() or not _ASSET.match(base):
        return None
    return base
