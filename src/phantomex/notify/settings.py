"""The ``[notifications]`` settings: apprise URLs, per-event switches, the rate limit and the
Telegram bot. No I/O here."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from phantomex.domain.inputs import HttpUrl, SecretUrl
from phantomex.secrets import SecretBox

TELEGRAM_API = "https://api.telegram.org/bot"


class EventSwitches(BaseModel):
    """Which events are sent. An unknown name is an error, so a typo cannot silence nothing."""

    model_config = ConfigDict(extra="forbid")

    trade: bool = Field(True, description="A fill: agent, side, quantity, symbol, price, fee.")
    approval: bool = Field(True, description="An advisory decision waits for a person.")
    risk: bool = Field(
        True,
        description="Forced exits (stop-loss, take-profit, max hold), drawdown exit, "
        "daily loss pause, kill switch on/off.",
    )
    rejection: bool = Field(False, description="A decision refused by a risk check (frequent).")
    error: bool = Field(True, description="A failed tick or a failing brain.")
    session_summary: bool = Field(True, description="The summary when a session ends.")
    feed_stale: bool = Field(True, description="A market feed went stale or recovered.")
    server: bool = Field(True, description="The server started or stopped.")


class TelegramSettings(BaseModel):
    """The Telegram bot: buttons for approvals, commands, and a copy of every notification."""

    model_config = ConfigDict(extra="forbid")

    token: SecretStr | None = Field(None, description="Bot token from @BotFather (plain text).")
    token_encrypted: str | None = Field(
        None, description="The token encrypted by `phantomex notify encrypt-token`."
    )
    allowed_chat_ids: list[int] = Field(
        default_factory=list, description="Chats that receive messages and may send commands."
    )
    api_url: HttpUrl = Field(TELEGRAM_API, description="Bot API base URL (a local Bot API server).")
    poll_timeout: int = Field(30, ge=0, le=50, description="getUpdates long-polling seconds.")

    @model_validator(mode="after")
    def _one_token(self) -> TelegramSettings:
        if self.token is not None and self.token_encrypted is not None:
            raise ValueError("set either token or token_encrypted, not both")
        return self

    @property
    def enabled(self) -> bool:
        return self.token is not None or self.token_encrypted is not None

    def bot_token(self, data_dir: Path) -> str | None:
        """The plain token; an encrypted one is opened with the data folder's SecretBox."""
        if self.token is not None:
            return self.token.get_secret_value()
        if self.token_encrypted is not None:
            return SecretBox.for_data_dir(data_dir).decrypt(self.token_encrypted)
        return None


class NotificationSettings(BaseModel):
    """``[notifications]`` in phantomex.toml (or ``PHANTOMEX_NOTIFICATIONS`` as JSON)."""

    model_config = ConfigDict(extra="forbid")

    urls: list[SecretUrl] = Field(
        default_factory=list,
        description="Apprise URLs (tgram://, discord://, mailto://, json://, ...); secret: "
        "they hold tokens and are never logged.",
    )
    events: EventSwitches = Field(default_factory=EventSwitches)
    max_per_minute: int = Field(
        20, ge=1, le=1000, description="Messages per minute; the rest become one 'N more' message."
    )
    queue_size: int = Field(
        1000, ge=1, description="Messages waiting to be sent; more are dropped."
    )
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)

    @property
    def enabled(self) -> bool:
        return bool(self.urls) or self.telegram.enabled
