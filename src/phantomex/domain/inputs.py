"""Input types shared by every boundary: API bodies and parameters, settings, stored specs.

Each rule lives here once, so every entry point refuses the same things:

* :data:`Number`, :data:`Money`, :data:`Quantity`, :data:`Price`: a decimal given as text must be
  ASCII decimal notation (``12``, ``-0.5``, ``1.5E+3``). Python's ``Decimal`` would also read
  ``"١٢"`` (Arabic-Indic digits), ``"1_000"`` and ``" 12 "``; none of these is money here.
* :data:`Name`: stripped, never empty (a name of one space is refused).
* :data:`Ident`: an identifier (agent, decision, order, session, endpoint): never empty, no
  whitespace or control characters.
* :data:`HttpUrl` and :data:`SecretUrl`: a URL the HTTP clients can use (valid port, a host, no
  whitespace or control characters) is refused at the boundary, not when a client is built.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from annotated_types import Ge, Le
from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, StringConstraints

from phantomex.domain.money import MAX_PRICE

_DECIMAL_TEXT: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_UNSAFE: Final = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
MAX_QUERY_INT: Final = 2**31 - 1  # every integer query parameter is at most this


def _decimal_text(value: Any) -> Any:
    """Refuse text that is not ASCII decimal notation (numbers and Decimals pass through)."""
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value) is None:
        raise ValueError(f"not a decimal number: {value!r} (use ASCII digits, e.g. 1000.50)")
    return value


def parse_decimal(text: str) -> Decimal:
    """``text`` in ASCII decimal notation as a finite Decimal (ValueError otherwise)."""
    result = Decimal(_decimal_text(text))
    if not result.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    return result


#: A finite decimal written in ASCII decimal notation.
Number = Annotated[Decimal, BeforeValidator(_decimal_text), Field(allow_inf_nan=False)]
#: USD: positive, at most 10^12, at most 8 decimals.
Money = Annotated[Number, Field(gt=0, le=Decimal(10) ** 12, decimal_places=8)]
#: A quantity of an instrument: positive, at most 10^15, at most 18 decimals.
Quantity = Annotated[Number, Field(gt=0, le=Decimal(10) ** 15, decimal_places=18)]
#: A price: positive, below the price ceiling.
Price = Annotated[Number, Field(gt=0, le=MAX_PRICE)]

#: A name: surrounding whitespace is stripped and it must not be empty.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
#: An identifier: 1 to 64 word characters, dots, colons, at signs or dashes.
Ident = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.:@\-]+$")]
#: An integer query parameter (offset, seed, ...): bounded, so no store ever overflows.
QueryInt = Annotated[int, Ge(0), Le(MAX_QUERY_INT)]


def check_url(value: str, schemes: frozenset[str] | None = None) -> str:
    """``value`` if it is an absolute URL without spaces or control characters; with
    ``schemes``, also of one of them, with a host and a port (if any) in 1..65535. The message
    never repeats the URL (it may hold a token)."""
    if _UNSAFE.search(value):
        raise ValueError("a URL may not contain spaces or control characters")
    scheme, sep, rest = value.partition("://")
    if not sep or not scheme or not rest:
        raise ValueError("not an absolute URL: give the scheme and host, e.g. http://host:port")
    if schemes is None:
        return value
    if scheme.lower() not in schemes:
        raise ValueError(f"the URL's scheme must be one of: {', '.join(sorted(schemes))}")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port that is not a number in 0..65535
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if not parts.hostname:
        raise ValueError("the URL has no host")
    if port == 0:
        raise ValueError("port 0 is not a port a server listens on")
    return value


def _http_url(value: str) -> str:
    return check_url(value, frozenset({"http", "https"}))


def _secret_url(value: SecretStr) -> SecretStr:
    check_url(value.get_secret_value())
    return value


#: An http(s) URL (LLM servers, exchange and market-data APIs, a Telegram Bot API server).
HttpUrl = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_http_url)]
#: A URL of any scheme holding a secret (apprise notification URLs: ``tgram://``, ``json://``).
SecretUrl = Annotated[SecretStr, AfterValidator(_secret_url)]
