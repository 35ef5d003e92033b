"""Build ccxt exchange clients the same way for the feed and the broker.

Every client rate-limits itself (``enableRateLimit``), returns numbers as the exchange's own
decimal strings (``number = str``, so prices reach Decimal exactly), trades spot only, and can be
pointed at another server by overriding entries of ``urls['api']`` (a test server, a proxy)."""

from __future__ import annotations

from typing import Any

import ccxt
import ccxt.async_support as ccxt_async

DEFAULT_TIMEOUT_MS = 10_000


def check_exchange_id(exchange_id: str) -> str:
    """The ccxt id (``binance``); ValueError naming the choices when ccxt has no such exchange."""
    name = exchange_id.strip().lower()
    if name not in ccxt.exchanges:
        raise ValueError(f"unknown exchange {exchange_id!r}: ccxt knows {len(ccxt.exchanges)}")
    return name


def client_config(
    exchange_id: str,
    *,
    api_key: str | None = None,
    secret: str | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> dict[str, Any]:
    options: dict[str, Any] = {"defaultType": "spot"}
    if exchange_id.startswith("binance"):
        # spot markets only; the currencies endpoint (sapi) needs keys and is not used
        options |= {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": timeout_ms, "options": options}
    if api_key is not None and secret is not None:
        config |= {"apiKey": api_key, "secret": secret}
    return config


def configure(
    exchange: Any, *, sandbox: bool = False, api_urls: dict[str, str] | None = None
) -> Any:
    """Switch to the exchange's testnet (ValueError when it has none), then apply URL overrides."""
    exchange.number = str
    if sandbox:
        try:
            exchange.set_sandbox_mode(True)
        except ccxt.NotSupported as exc:
            raise ValueError(f"{exchange.id} has no testnet (sandbox) in ccxt") from exc
    if api_urls:
        exchange.urls["api"] = {**exchange.urls["api"], **api_urls}
    return exchange


def sync_client(
    exchange_id: str,
    *,
    sandbox: bool = False,
    api_urls: dict[str, str] | None = None,
    **config: Any,
) -> Any:
    """A blocking ccxt client (``ccxt.<id>``)."""
    name = check_exchange_id(exchange_id)
    exchange = getattr(ccxt, name)(client_config(name, **config))
    return configure(exchange, sandbox=sandbox, api_urls=api_urls)


def async_client(
    exchange_id: str,
    *,
    websocket: bool = False,
    sandbox: bool = False,
    api_urls: dict[str, str] | None = None,
    **config: Any,
) -> Any:
    """An asyncio ccxt client: ``ccxt.pro.<id>`` when ``websocket`` (it also speaks REST),
    else ``ccxt.async_support.<id>``."""
    name = check_exchange_id(exchange_id)
    module: Any = ccxt_async
    if websocket:
        import ccxt.pro as ccxt_pro

        module = ccxt_pro
    exchange = getattr(module, name)(client_config(name, **config))
    return configure(exchange, sandbox=sandbox, api_urls=api_urls)


def has_watch_tickers(exchange_id: str) -> bool:
    """Whether ccxt.pro streams tickers for this exchange."""
    import ccxt.pro as ccxt_pro

    name = check_exchange_id(exchange_id)
    if name not in ccxt_pro.exchanges:
        return False
    return bool(getattr(ccxt_pro, name)().has.get("watchTickers"))
