"""Settings in one place. Precedence: CLI flag > ``PHANTOMEX_*`` environment > TOML file > defaults.

The TOML file is ``phantomex.toml`` in the working directory, or the path in ``PHANTOMEX_CONFIG``.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from phantomex.brains.llm.types import EndpointConfig
from phantomex.broker.venues import ExchangeSettings
from phantomex.market.ccxt_settings import CcxtSourceSettings
from phantomex.market.coingecko import CoinGeckoConfig
from phantomex.market.guard import PriceGuardConfig
from phantomex.market.polymarket import PolymarketSettings
from phantomex.market.yahoo import YahooSettings
from phantomex.notify.settings import NotificationSettings


def config_file() -> Path:
    return Path(os.environ.get("PHANTOMEX_CONFIG", "phantomex.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PHANTOMEX_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the server binds.")
    port: int = Field(8000, ge=1, le=65535)
    data_dir: Path = Field(
        Path("data"), description="Holds phantomex.db, the log and the pid file."
    )
    db_url: str | None = Field(None, description="SQLAlchemy URL; overrides the SQLite file.")
    demo: bool = Field(True, description="Create the three demo agents on an empty database.")
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
    llm_endpoints: list[EndpointConfig] = Field(
        default_factory=list,
        description="LLM servers ([[llm_endpoints]] tables in the TOML file).",
    )
    sources: list[str] = Field(
        default_factory=lambda: ["replay"],
        description="Market sources: replay, coingecko, ccxt:<exchange>, yahoo, polymarket.",
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

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{(self.data_dir / 'phantomex.db').resolve()}"

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
        return (init_settings, env_settings, toml)


def load_settings(**overrides: Any) -> Settings:
    """Settings with CLI overrides (None values are ignored so lower layers show through)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
