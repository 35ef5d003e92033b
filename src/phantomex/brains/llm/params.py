"""An LLM agent's parameters (its ``params``): model, sampling, prompt, budgets, tools, news."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from phantomex.brains.llm.profiles import ProfileName


class LLMParams(BaseModel):
    """An LLM agent's model settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = Field(min_length=1, max_length=64, description="A configured LLM endpoint.")
    model: str = Field(min_length=1, max_length=200, description="A model the endpoint serves.")
    temperature: float = Field(default=0.2, ge=0, le=2)
    seed: int | None = Field(default=None, description="Fixed seed, where the server honours it.")
    context_budget_chars: int = Field(
        default=12_000, ge=1_000, le=400_000, description="Largest prompt, in characters."
    )
    max_tokens: int | None = Field(
        default=None,
        ge=16,
        le=32_000,
        description="Longest answer, in tokens; empty: sized to the answer (its schema).",
    )
    prompt_profile: ProfileName = Field(
        default="auto",
        description="compact: fewer, rounder numbers and an example answer, for small models; "
        "full: the whole prompt; auto: compact when the model's name states at most 3B "
        "parameters.",
    )
    timeout_seconds: float | None = Field(
        default=None, gt=0, le=3600, description="Per call; the endpoint's timeout if empty."
    )
    max_decision_age_seconds: float | None = Field(
        default=None,
        gt=0,
        le=7 * 86400,
        description="Longest market time between the prompt and applying its answer (a trade "
        "decided on an older market is a recorded stale hold); one decision interval if empty.",
    )
    daily_token_budget: int | None = Field(
        default=None,
        gt=0,
        description="Tokens (in + out) per UTC day; the agent pauses when spent.",
    )
    use_cache: bool = Field(
        default=False, description="Answer identical prompts from the response cache (replays)."
    )
    tools: bool = Field(
        default=False,
        description="Let the model call tools (price history, indicators, portfolio, notes, "
        "place_order) before it decides; falls back to one JSON answer where unsupported.",
    )
    max_steps: int = Field(
        default=4, ge=1, le=10, description="Model turns per decision in tool mode."
    )
    news: bool = Field(
        default=False,
        description="Show news as known at the decision's time: a digest in the prompt and, "
        "with tools, search_news and get_news (untrusted text, in a data envelope).",
    )
    news_items: int = Field(default=5, ge=1, le=50, description="News items per decision.")
    news_chars: int = Field(
        default=2000, ge=200, le=20_000, description="Characters of news per decision."
    )
    news_digest: int = Field(
        default=3, ge=0, le=20, description="Items of the prompt's news digest (0: none)."
    )
    reflect_every: int | None = Field(
        default=5,
        ge=1,
        le=10_000,
        description="Reflect on the recent trades every N closed trades and keep the lessons "
        "as notes (empty: never).",
    )
