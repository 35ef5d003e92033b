"""The decision as a JSON schema for constrained decoders, and the answer length it allows."""

from __future__ import annotations

from typing import Any, Final

from phantomex.brains.llm.schema import FIELDS, MAX_REASONING_CHARS

__all__ = ["POSITIVE_DECIMAL_PATTERN", "answer_max_tokens", "decision_json_schema"]

#: a decimal greater than zero, in plain notation, at most 12 integer and 10 fraction digits
#: (below every size and price limit): a pattern llama.cpp's grammar enforces where it ignores
#: ``minimum``, so no constrained decoder can write a zero or negative size or exit price
POSITIVE_DECIMAL_PATTERN: Final = r"^(0[.][0-9]{0,9}[1-9]|[1-9][0-9]{0,11}([.][0-9]{1,10})?)$"
#: the confidences an answer may state (a JSON enum every constrained decoder enforces)
CONFIDENCES: Final = tuple(round(step / 10, 1) for step in range(11))
#: the longest reasoning the schema allows by default (the prompt profiles choose their own)
REASONING_MAX_CHARS: Final = 300


def _positive_or_null(description: str) -> dict[str, Any]:
    return {
        "anyOf": [{"type": "string", "pattern": POSITIVE_DECIMAL_PATTERN}, {"type": "null"}],
        "description": description,
    }


def decision_json_schema(
    symbols: list[str] | None = None,
    *,
    all_required: bool = False,
    reasoning_chars: int = REASONING_MAX_CHARS,
) -> dict[str, Any]:
    """The decision as a JSON schema for every constrained form (OpenAI ``json_schema``,
    llama.cpp, vLLM, Ollama ``format``).

    Only what constrained decoders enforce: enums, ``anyOf``, string ``pattern`` and
    ``maxLength`` (llama.cpp's grammar ignores ``minimum``, and a type list there drops the
    other keywords, so sizes and exit prices are positive decimal *strings* under ``anyOf``
    with null; :class:`LLMDecision` reads numbers and numeric strings alike). ``symbols``
    restricts ``symbol`` to an enum (plus null). ``all_required`` lists every property in
    ``required`` (nullable), as OpenAI ``strict: true`` demands; by default only action,
    symbol, reasoning and confidence are required. ``reasoning_chars``: the reasoning's
    ``maxLength``, which also bounds the answer's length (:func:`answer_max_tokens`)."""
    symbol: dict[str, Any] = {
        "type": ["string", "null"],
        "description": "ticker of the asset to trade (null for hold)",
    }
    if symbols:
        symbol = {
            "enum": [*dict.fromkeys(symbols), None],
            "description": symbol["description"],
        }
    properties: dict[str, Any] = {
        "action": {"type": "string", "enum": ["buy", "sell", "hold"]},
        "symbol": symbol,
        "quantity": _positive_or_null("units of the asset, or null"),
        "notional": _positive_or_null("size in USD, or null; both null lets risk size it"),
        "reasoning": {
            "type": "string",
            "maxLength": reasoning_chars,
            "description": f"short explanation (max {reasoning_chars} chars)",
        },
        "confidence": {"enum": list(CONFIDENCES), "description": "between 0 and 1"},
        "stop_loss": _positive_or_null("exit price below the market, or null"),
        "take_profit": _positive_or_null("exit price above the market, or null"),
    }
    required = list(FIELDS) if all_required else ["action", "symbol", "reasoning", "confidence"]
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


#: tokens of an answer besides its reasoning: keys, punctuation, enums and four 23-character
#: decimals, counted generously (one token per character of a number)
_ANSWER_FRAME_TOKENS: Final = 150


def answer_max_tokens(schema: dict[str, Any]) -> int:
    """``max_tokens`` for an answer to ``schema``: the frame plus the reasoning's ``maxLength``
    at one token per character (the worst case: a grammar-enforced answer is never cut)."""
    reasoning = schema.get("properties", {}).get("reasoning", {})
    return _ANSWER_FRAME_TOKENS + int(reasoning.get("maxLength", MAX_REASONING_CHARS))
