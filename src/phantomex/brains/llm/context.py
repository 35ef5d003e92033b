"""The model's context window, and a prompt budget that fits in it.

A server cuts or refuses what does not fit: llama.cpp answers HTTP 400 (its default context is
2,048 tokens), Ollama silently drops the head of the prompt (the rules) beyond ``num_ctx``. So
the prompt is budgeted in tokens: the window comes from the endpoint's ``context_window``
setting, else from the server (Ollama ``/api/show``, llama-server ``/props``), else from an
overflow error that states it; characters per token are measured on the model's own answers
(``tokens_in`` of earlier calls), starting from a cautious guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from phantomex.brains.llm.client_base import LLMClient

#: characters per prompt token before any call was measured (numbers tokenize densely)
DEFAULT_CHARS_PER_TOKEN = 3.0
#: tokens kept free for the chat template and the tokenizer's slack
TEMPLATE_TOKENS = 64
#: the smallest prompt budget in tokens (the rules, wallet and prices always go in)
MIN_PROMPT_TOKENS = 256


@dataclass(frozen=True, slots=True)
class Budget:
    """What one call may send: ``chars`` of prompt text, in a ``window`` of tokens (None:
    unknown, the configured character budget applies)."""

    chars: int
    window: int | None
    chars_per_token: float

    def fits(self, prompt_chars: int, max_tokens: int) -> bool:
        """Whether a prompt of ``prompt_chars`` plus the answer fits the window."""
        if self.window is None:
            return True
        tokens = math.ceil(prompt_chars / self.chars_per_token)
        return tokens + max_tokens + TEMPLATE_TOKENS <= self.window


class ContextWindows:
    """Context windows and measured characters per token, per (endpoint, model)."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], int | None] = {}
        self._ratio: dict[tuple[str, str], float] = {}

    async def window(self, client: LLMClient, model: str) -> int | None:
        """The endpoint's setting, else what the server says (asked once), else a learnt one."""
        if client.endpoint.context_window is not None:
            return client.endpoint.context_window
        key = (client.name, model)
        if key not in self._windows:
            self._windows[key] = await client.context_window(model)
        return self._windows[key]

    def learn_window(self, endpoint: str, model: str, tokens: int) -> None:
        """A window an overflow error stated."""
        self._windows[(endpoint, model)] = tokens

    def learn_ratio(self, endpoint: str, model: str, chars: int, tokens: int | None) -> None:
        """Characters per token seen in a call (the smallest seen is kept: cautious)."""
        if not tokens or chars <= 0:
            return
        key = (endpoint, model)
        ratio = chars / tokens
        self._ratio[key] = min(ratio, self._ratio.get(key, ratio))

    def chars_per_token(self, endpoint: str, model: str) -> float:
        return self._ratio.get((endpoint, model), DEFAULT_CHARS_PER_TOKEN)

    async def budget(
        self, client: LLMClient, model: str, configured_chars: int, max_tokens: int
    ) -> Budget:
        """The prompt budget: the configured characters, cut to what fits the window."""
        window = await self.window(client, model)
        ratio = self.chars_per_token(client.name, model)
        if window is None:
            return Budget(configured_chars, None, ratio)
        room = max(MIN_PROMPT_TOKENS, window - max_tokens - TEMPLATE_TOKENS)
        return Budget(min(configured_chars, int(room * ratio)), window, ratio)


def ollama_num_ctx(configured_chars: int, max_tokens: int, window: int | None) -> int:
    """The ``num_ctx`` to load an Ollama model with: room for the configured prompt and the
    answer, rounded up to 1,024 tokens (a stable value: a change reloads the model), at most
    the model's window."""
    need = math.ceil(configured_chars / DEFAULT_CHARS_PER_TOKEN) + max_tokens + TEMPLATE_TOKENS
    size = math.ceil(need / 1024) * 1024
    return min(size, window) if window is not None else size


def prompt_chars(messages: list[dict[str, object]]) -> int:
    """The characters of the messages' text."""
    return sum(len(str(m.get("content") or "")) for m in messages)
