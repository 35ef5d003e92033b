"""A sliding-window rate limit that coalesces what it holds back into one "N more" message."""

from __future__ import annotations

from collections import Counter, deque

from phantomex.notify.messages import Message


class RateLimit:
    """At most ``limit`` messages per ``window`` seconds. Held-back messages are counted by kind
    and come out as one summary when the window has room again. Times are passed in (any
    monotonic clock), so the limit is deterministic to test."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._sent: deque[float] = deque()
        self._held: Counter[str] = Counter()

    def _trim(self, now: float) -> None:
        while self._sent and now - self._sent[0] >= self.window:
            self._sent.popleft()

    def admit(self, message: Message, now: float) -> bool:
        """Whether to send ``message`` now; urgent ones always go (and still count)."""
        self._trim(now)
        if message.urgent or len(self._sent) < self.limit:
            self._sent.append(now)
            return True
        self._held[message.kind] += 1
        return False

    @property
    def held(self) -> int:
        return sum(self._held.values())

    def next_free(self, now: float) -> float | None:
        """Seconds until a summary can go out; None when nothing is held back."""
        if not self._held:
            return None
        self._trim(now)
        if len(self._sent) < self.limit:
            return 0.0
        return max(0.0, self._sent[0] + self.window - now)

    def summary(self, now: float, *, force: bool = False) -> Message | None:
        """The "N more" message once the window has room (or ``force``), else None."""
        free = self.next_free(now)
        if free is None or (free > 0 and not force):
            return None
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self._held.items()))
        total = self.held
        self._held.clear()
        self._sent.append(now)
        return Message(
            "summary", f"{total} more event{'s' * (total != 1)} (rate limit)", f"Not sent: {kinds}"
        )
