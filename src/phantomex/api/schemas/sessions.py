"""Sessions, their summaries and the leaderboard: ``/api/sessions*`` and ``/api/leaderboard``.

A session's agents carry their curves (``equity``, ``trades``, ``decisions``) and the session
its ``times`` only when asked for (``curves=true``); the routes leave out what was not given."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from phantomex.api.schemas.wire import RESPONSE, DecimalText, Timestamp


class SessionWindow(BaseModel):
    model_config = RESPONSE

    source: str = Field(description="dataset:<name> or live:<feed>.")
    symbols: list[str]
    start: Timestamp
    end: Timestamp
    period_seconds: float
    fee_bps: DecimalText | None = None
    planned_end: Timestamp | None = Field(
        None, description="A live session stopped early: the end it was started with."
    )
    # a replay that went live (``then_live``): its two parts and how the hand-over went
    parts: list[dict[str, Any]] | None = Field(
        None, description="Replay, then live: each part's source, start, end, ticks and bars."
    )
    handover_at: str | None = Field(None, description="When the live part began (ISO-8601).")
    bridge_bars: int | None = Field(None, description="Bars the live source's history bridged.")
    top_ups: int | None = Field(None, description="Times the newest recorded bars were fetched.")
    gaps: list[dict[str, Any]] | None = Field(None, description="Gaps found (none expected).")
    duplicates: int | None = Field(None, description="Bars dropped as already carried.")


class SessionAgent(BaseModel):
    model_config = RESPONSE

    name: str
    role: str = Field(description="agent or benchmark.")
    entrant: str = Field(description="What the leaderboard ranks across sessions.")
    spec: dict[str, Any]
    agent_id: str | None
    start_equity: DecimalText
    equity: list[DecimalText] | None = Field(None, description="One value per ``times`` entry.")
    trades: list[dict[str, Any]] | None = None
    decisions: list[dict[str, Any]] | None = None
    holds: int
    metrics: dict[str, Any]
    status: str
    equity_now: DecimalText
    pnl: DecimalText
    return_pct: float
    trade_count: int


class SessionView(BaseModel):
    model_config = RESPONSE

    id: str
    name: str
    kind: Literal["replay", "live"]
    status: str = Field(description="running, finished, stopped, interrupted or failed.")
    spec: dict[str, Any] = Field(description="The session as started.")
    window: SessionWindow = Field(description="The market window; ``end`` is where it ended.")
    fingerprint: str = Field(description="Equal for sessions on the same market window.")
    created_at: Timestamp
    ends_at: Timestamp | None
    finished_at: Timestamp | None
    clock: Timestamp | None = Field(description="The market time reached.")
    progress: float
    times: list[Timestamp] | None = None
    error: str | None
    agents: list[SessionAgent]
    elapsed_seconds: float
    remaining_seconds: float
    duration_seconds: float


class StoredSummary(BaseModel):
    model_config = RESPONSE

    id: int
    session_id: str
    kind: str = Field(description="periodic, final or manual.")
    time: Timestamp = Field(description="The market time it covers up to.")
    created_at: Timestamp
    author: Literal["template", "llm"]
    text: str
    figures: dict[str, Any]
    endpoint: str | None
    model: str | None
    prompt: list[dict[str, Any]] | None
    raw_output: str | None
    error: str | None
    latency_seconds: float | None
    tokens_in: int | None
    tokens_out: int | None
    template: str | None = Field(None, description="The template's text of the same figures.")


class DraftSummary(BaseModel):
    """The template's summary of the results so far (not stored)."""

    model_config = RESPONSE

    kind: Literal["draft"]
    author: Literal["template"]
    figures: dict[str, Any]
    text: str
    template: str


class SessionSummaries(BaseModel):
    model_config = RESPONSE

    latest: StoredSummary | DraftSummary
    summaries: list[StoredSummary]


class WrittenSummary(BaseModel):
    model_config = RESPONSE

    latest: StoredSummary


class LeaderboardGroup(BaseModel):
    """Agents that faced the same market windows (unless mixed), ranked."""

    model_config = RESPONSE

    comparable: bool
    ratio_basis: dict[str, Any]
    windows: list[dict[str, Any]]
    fingerprints: list[str]
    rows: list[dict[str, Any]] = Field(description="Ranked entrants with their intervals.")
    pairs: list[dict[str, Any]] = Field(description="Whether each pair differs significantly.")


class SessionRef(BaseModel):
    model_config = RESPONSE

    id: str
    name: str
    status: str
    fingerprint: str


class Leaderboard(BaseModel):
    model_config = RESPONSE

    by: str
    confidence: float
    resamples: int
    seed: int
    method: str
    note: str | None
    groups: list[LeaderboardGroup]
    sessions: list[SessionRef]
