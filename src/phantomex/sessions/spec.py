"""What a user asks for when starting a session (validated at the API boundary)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from phantomex.domain.inputs import Ident, Money, Name
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import KernelError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.I)
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
NAME = r"^[\w .\-]+$"


class SessionError(KernelError):
    """A session that cannot be started or changed (a 4xx for the API)."""


def parse_duration(value: str | float) -> timedelta:
    """``"1h"``, ``"24h"``, ``"90m"``, ``"2d"``, ``"30s"`` or a number of seconds."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"not a duration: {value!r} (use e.g. 1h, 24h, 90m or seconds)")
        seconds = float(match.group(1)) * _UNIT[match.group(2).lower()]
    if not 1 <= seconds <= 90 * 86400:
        raise ValueError("a duration must be between 1 second and 90 days")
    return timedelta(seconds=seconds)


class SessionAgent(BaseModel):
    """One competitor: a rule strategy (or alias such as ``sma_cross``) with parameters, or the
    ``llm`` brain with ``{"endpoint", "model"}``. Every agent gets the session's cash, symbols
    and, unless given here, the default risk profile."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(max_length=60, pattern=NAME)
    brain: Name = Field(max_length=40)
    params: dict[str, Any] = Field(default_factory=dict)
    goal: str = Field("", max_length=2000)
    interval_seconds: int | None = Field(
        None, ge=1, le=7 * 86400, description="Time between decisions (default: one bar)."
    )
    risk: dict[str, Any] = Field(default_factory=dict, description="RiskProfile overrides.")

    @field_validator("risk")
    @classmethod
    def _valid_risk(cls, value: dict[str, Any]) -> dict[str, Any]:
        RiskProfile.model_validate(value)
        return value


class ReplayWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field("demo", min_length=1, max_length=40)
    start: datetime
    end: datetime | None = Field(None, description="Exclusive; none when the replay goes live.")
    speed: float = Field(
        0.0, ge=0, le=1e7, description="Market seconds per wall second; 0 = as fast as possible."
    )

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _ordered(self) -> ReplayWindow:
        if self.end is not None and self.end <= self.start:
            raise ValueError("the window's end must be after its start")
        return self


class ThenLive(BaseModel):
    """Replay, then live: after the recorded bars the agents carry on into a live source."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        min_length=1,
        max_length=60,
        pattern=r"^(coingecko|ccxt:[a-z0-9_]+)$",
        description="The live source: coingecko or ccxt:<exchange>.",
    )
    duration: str | float = Field(description="How long the live part runs: 1h, 24h, or seconds.")
    exchange: str = Field(
        "binance",
        pattern=r"^[a-z0-9_]+$",
        max_length=40,
        description="The ccxt exchange the history is downloaded from when not stored.",
    )
    quote: str = Field("USDT", pattern=r"^[A-Z0-9]+$", max_length=10)

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | float) -> str | float:
        parse_duration(value)
        return value

    @property
    def live_duration(self) -> timedelta:
        return parse_duration(self.duration)


class SummaryLLM(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: Ident
    model: Name = Field(max_length=200)


class SessionSpec(BaseModel):
    """A session: ``replay`` over a window of recorded prices, or ``live`` for a duration."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(max_length=60, pattern=NAME)
    kind: Literal["replay", "live"] = "replay"
    symbols: list[str] = Field(min_length=1, max_length=20)
    cash: Money = Decimal(10_000)
    agents: list[SessionAgent] = Field(min_length=1, max_length=20)
    replay: ReplayWindow | None = None
    then_live: ThenLive | None = Field(
        None, description="Replay: carry on into this live source when the replay reaches now."
    )
    duration: str | float | None = Field(None, description="Live: 1h, 24h, 90m or seconds.")
    summary_every_hours: float | None = Field(
        None, gt=0, le=24 * 90, description="Also summarise every N hours (market time)."
    )
    summary_llm: SummaryLLM | None = Field(None, description="Summaries written by this model.")
    warmup_bars: int = Field(60, ge=0, le=10_000, description="Replay: history before the start.")

    @field_validator("symbols")
    @classmethod
    def _upper_unique(cls, value: list[str]) -> list[str]:
        out = []
        for sym in value:
            sym = sym.strip().upper()
            if not sym:
                raise ValueError("empty symbol")
            if sym not in out:
                out.append(sym)
        return out

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | float | None) -> str | float | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SessionSpec:
        names = [a.name.casefold() for a in self.agents]
        if len(set(names)) != len(names):
            raise ValueError("agent names must be unique within a session")
        if self.kind == "replay" and self.replay is None:
            raise ValueError("a replay session needs `replay`: {dataset, start, end}")
        if self.then_live is not None and self.kind != "replay":
            raise ValueError("`then_live` continues a replay session")
        if self.replay is not None and self.kind == "replay":
            if self.then_live is None and self.replay.end is None:
                raise ValueError("a replay session needs `replay.end` (or `then_live`)")
            if self.then_live is not None and self.replay.end is not None:
                raise ValueError("a replay that goes live runs until now: give no `replay.end`")
            if self.then_live is not None and self.replay.speed != 0:
                raise ValueError("a replay that goes live catches up as fast as it can (speed 0)")
            if self.then_live is not None and self.replay.dataset == "demo":
                raise ValueError(
                    "a replay that goes live needs a dataset to keep its downloaded history in "
                    "(e.g. `binance`), not the shipped `demo`"
                )
        if self.kind == "live" and self.duration is None:
            raise ValueError("a live session needs a `duration` (1h, 24h, or seconds)")
        return self

    @property
    def live_duration(self) -> timedelta:
        assert self.duration is not None
        return parse_duration(self.duration)
