"""Prompt profiles: how much a prompt says, and how precisely, for the model that reads it.

Small models (a few hundred million parameters) copy what they see: a 12-digit max-buy
quantity comes back verbatim, forty 7-digit closes drown the rules, a rejection reason in the
decision history is repeated as the model's own reasoning, and an 800-character schema is read
as text to echo. The **compact** profile gives them fewer, rounder numbers (closes to 5
significant digits, limits rounded *down* to 3, so a copied limit is still within it), ten
closes, one example answer, past outcomes labelled as facts, and a shorter reasoning (which
also shortens ``max_tokens``). The **full** profile is the default prompt. ``auto`` picks compact
for a model whose name states a size of at most :data:`COMPACT_UP_TO_BILLIONS` (``135m``,
``0.5b``, ``qwen2.5:1.5b``), full otherwise (no stated size: a hosted model, presumably large).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "COMPACT",
    "COMPACT_UP_TO_BILLIONS",
    "FULL",
    "ProfileName",
    "PromptProfile",
    "model_size_billions",
    "profile_for",
]

ProfileName = Literal["auto", "full", "compact"]
COMPACT_UP_TO_BILLIONS: Final = 3.0
_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)\s*([mb])(?![a-z])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PromptProfile:
    """What a prompt shows and with how many significant digits."""

    name: str
    history_bars: int  # closes per symbol
    close_digits: int  # closes and moving averages
    price_digits: int  # prices, average costs and marks
    limit_digits: int  # max buy quantities (rounded down) and holdings
    reasoning_chars: int  # the answer's reasoning (the schema's maxLength)
    example: bool  # one example answer after the template
    outcomes: bool  # past decisions as labelled outcomes, without the risk's wording


FULL: Final = PromptProfile("full", 20, 7, 10, 12, 300, example=False, outcomes=False)
COMPACT: Final = PromptProfile("compact", 10, 5, 6, 3, 160, example=True, outcomes=True)


def model_size_billions(model: str) -> float | None:
    """The parameter count a model's name states, in billions (``smollm2-135m`` → 0.135,
    ``qwen2.5:0.5b`` → 0.5, ``llama3.1:8b`` → 8), or None."""
    sizes = [
        float(number) / (1000 if unit.lower() == "m" else 1)
        for number, unit in _SIZE.findall(model)
    ]
    return max(sizes) if sizes else None


def profile_for(name: ProfileName, model: str) -> PromptProfile:
    """The profile ``name`` chooses for ``model`` (``auto``: by the size in its name)."""
    if name == "compact":
        return COMPACT
    if name == "full":
        return FULL
    size = model_size_billions(model)
    return COMPACT if size is not None and size <= COMPACT_UP_TO_BILLIONS else FULL
