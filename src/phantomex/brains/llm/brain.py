"""The LLM brain: prompt → structured answer → parsed decision, with one repair round trip.

Every call is returned to the kernel in ``decision.meta["llm_calls"]`` (the kernel stores the
audit trail and the cache entries), so the brain itself never writes anywhere."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from phantomex.brains.base import BrainContext
from phantomex.brains.llm.clients import chat_structured
from phantomex.brains.llm.parse import parse_decision, repair_prompt
from phantomex.brains.llm.prompt import build_messages
from phantomex.brains.llm.runtime import LLMRuntime, cache_key
from phantomex.brains.llm.schema import decision_json_schema
from phantomex.brains.llm.types import ChatOptions, ChatResult, LLMError, StructuredMode
from phantomex.domain.models import Decision


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
    max_tokens: int = Field(default=600, ge=16, le=32_000, description="Longest answer.")
    timeout_seconds: float | None = Field(
        default=None, gt=0, le=3600, description="Per call; the endpoint's timeout if empty."
    )
    daily_token_budget: int | None = Field(
        default=None,
        gt=0,
        description="Tokens (in + out) per UTC day; the agent pauses when spent.",
    )
    use_cache: bool = Field(
        default=False, description="Answer identical prompts from the response cache (replays)."
    )


class LLMBrain:
    kind: ClassVar[str] = "llm"
    title: ClassVar[str] = "Language model"
    description: ClassVar[str] = (
        "Asks a language model (Ollama or any OpenAI-compatible server) for a JSON decision, "
        "with the goal, rules, prices, history, indicators, positions and past decisions."
    )
    Params: ClassVar[type[LLMParams]] = LLMParams
    slow: ClassVar[bool] = True  # the kernel runs it in the background

    def __init__(self, params: LLMParams, runtime: LLMRuntime) -> None:
        self.params = params
        self.runtime = runtime
        endpoint = runtime.endpoint(params.endpoint)  # raises on an unknown endpoint
        self.timeout = params.timeout_seconds or endpoint.timeout_seconds
        self.deadline_seconds = 2 * self.timeout + 5  # a call and its repair, with slack
        self._schema: dict[str, Any] = decision_json_schema()

    def describe(self) -> str:
        return f"{self.params.model} on {self.params.endpoint}"

    async def decide(self, ctx: BrainContext) -> Decision:
        decision = await self._decide(ctx)
        count_tokens(ctx.state, ctx.now.date().isoformat(), decision.meta.get("llm_calls", []))
        return decision

    async def _decide(self, ctx: BrainContext) -> Decision:
        spent = self._tokens_today(ctx)
        budget = self.params.daily_token_budget
        if budget is not None and spent >= budget:
            midnight = datetime.combine(
                ctx.now.date() + timedelta(days=1), datetime.min.time(), tzinfo=ctx.now.tzinfo
            )
            reason = f"daily token budget spent ({spent}/{budget})"
            return Decision.hold(reason, pause={"until": midnight.isoformat(), "reason": reason})
        messages = build_messages(
            ctx,
            goal=ctx.goal,
            recent_decisions=ctx.recent_decisions,
            notes=list(ctx.state.get("notes", [])),
            budget_chars=self.params.context_budget_chars,
            mode_prompt_json=True,
        )
        calls: list[dict[str, Any]] = []
        self._schema = decision_json_schema(sorted(ctx.symbols))
        result = await self._call(messages, "decide", calls)
        if result is None:
            return Decision.hold(f"LLM call failed: {calls[-1]['error']}", llm_calls=calls)
        outcome = parse_decision(result.content, reasoning_field=result.thinking)
        calls[-1]["parsed"] = _parsed(outcome.decision)
        if outcome.decision is None:
            calls[-1]["error"] = f"invalid output: {outcome.error}"
            repair = [
                *messages,
                {"role": "assistant", "content": result.content or ""},
                {"role": "user", "content": repair_prompt(outcome.error or "invalid output")},
            ]
            result = await self._call(repair, "repair", calls)
            if result is None:
                return Decision.hold(
                    f"invalid model output, and the repair call failed: {calls[-1]['error']}",
                    llm_calls=calls,
                )
            outcome = parse_decision(result.content, reasoning_field=result.thinking)
            calls[-1]["parsed"] = _parsed(outcome.decision)
            if outcome.decision is None:
                calls[-1]["error"] = f"invalid output: {outcome.error}"
                return Decision.hold(
                    f"invalid model output after one repair: {outcome.error}", llm_calls=calls
                )
        decision = outcome.decision
        decision.meta["llm_calls"] = calls
        decision.meta["model"] = self.params.model
        return decision

    async def _call(
        self, messages: list[dict[str, Any]], purpose: str, calls: list[dict[str, Any]]
    ) -> ChatResult | None:
        """One model call (or a cache hit), recorded in ``calls``; None when it failed."""
        p = self.params
        options = ChatOptions(
            temperature=p.temperature,
            seed=p.seed,
            max_tokens=p.max_tokens,
            timeout_seconds=self.timeout,
            keep_alive=self.runtime.keep_alive(p.endpoint),
        )
        key = cache_key(p.endpoint, p.model, messages, [p.temperature, p.seed, p.max_tokens])
        call: dict[str, Any] = {
            "purpose": purpose,
            "endpoint": p.endpoint,
            "model": p.model,
            "messages": messages,
            "cache_key": key if p.use_cache else None,
        }
        calls.append(call)
        cached = self.runtime.cache(key) if p.use_cache and self.runtime.cache else None
        if cached is not None:
            result = _result_from_cache(cached)
            call.update(_result_fields(result), cached=True, latency_seconds=0.0)
            return result
        started = time.perf_counter()
        try:
            async with self.runtime.call(p.endpoint, p.model):
                result = await chat_structured(
                    self.runtime.client(p.endpoint),
                    p.model,
                    messages,
                    self._schema,
                    options,
                    self.runtime.modes,
                )
        except LLMError as exc:
            call.update(error=f"{exc.kind}: {exc}", latency_seconds=time.perf_counter() - started)
            return None
        call.update(_result_fields(result), cost=self._cost(result))
        if p.use_cache:
            call["cache_entry"] = _cache_entry(result)
        return result

    def _cost(self, result: ChatResult) -> Decimal | None:
        """Estimated cost in USD where the endpoint has prices per 1k tokens."""
        endpoint = self.runtime.endpoint(self.params.endpoint)
        if endpoint.price_per_1k_input is None and endpoint.price_per_1k_output is None:
            return None
        cost = Decimal(0)
        if endpoint.price_per_1k_input is not None and result.tokens_in:
            cost += endpoint.price_per_1k_input * result.tokens_in / 1000
        if endpoint.price_per_1k_output is not None and result.tokens_out:
            cost += endpoint.price_per_1k_output * result.tokens_out / 1000
        return cost

    @staticmethod
    def _tokens_today(ctx: BrainContext) -> int:
        """Tokens used today, as counted in the brain's state."""
        usage = ctx.state.get("token_usage") or {}
        return int(usage.get("used", 0)) if usage.get("day") == ctx.now.date().isoformat() else 0


def count_tokens(state: dict[str, Any], day: str, calls: list[dict[str, Any]]) -> None:
    """Add the calls' tokens to the day's usage in a brain state."""
    usage = state.get("token_usage") or {}
    used = int(usage.get("used", 0)) if usage.get("day") == day else 0
    used += sum(int(c.get("tokens_in") or 0) + int(c.get("tokens_out") or 0) for c in calls)
    state["token_usage"] = {"day": day, "used": used}


def _result_fields(result: ChatResult) -> dict[str, Any]:
    return {
        "mode": result.mode.value,
        "raw_response": result.content,
        "thinking": result.thinking,
        "latency_seconds": result.latency_seconds,
        "tokens_in": result.tokens_in,
        "tokens_out": result.tokens_out,
    }


def _cache_entry(result: ChatResult) -> dict[str, Any]:
    return {
        "content": result.content,
        "thinking": result.thinking,
        "mode": result.mode.value,
        "tokens_in": result.tokens_in,
        "tokens_out": result.tokens_out,
    }


def _result_from_cache(entry: dict[str, Any]) -> ChatResult:
    return ChatResult(
        content=entry.get("content") or "",
        mode=StructuredMode(entry.get("mode", StructuredMode.PROMPT.value)),
        latency_seconds=0.0,
        thinking=entry.get("thinking"),
        tokens_in=entry.get("tokens_in"),
        tokens_out=entry.get("tokens_out"),
    )


def _parsed(decision: Decision | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    return {
        "action": decision.action.value,
        "symbol": decision.symbol,
        "quantity": str(decision.quantity) if decision.quantity is not None else None,
        "notional": str(decision.notional) if decision.notional is not None else None,
        "confidence": decision.confidence,
        "reasoning": decision.reasoning,
    }
