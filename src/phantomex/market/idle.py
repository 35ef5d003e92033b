"""A feed with no instruments that never ticks: the server's feed when no configured source
could be built (each is listed in ``/health``), so the server still starts."""

from __future__ import annotations

import asyncio

from phantomex.domain.models import Instrument, Tick


class IdleFeed:
    """No prices; :meth:`next_tick` waits until :meth:`close`."""

    def __init__(self) -> None:
        self._closed = asyncio.Event()

    @property
    def instruments(self) -> dict[str, Instrument]:
        return {}

    def warmup(self) -> list[Tick]:
        return []

    async def next_tick(self) -> Tick | None:
        await self._closed.wait()
        return None

    def close(self) -> None:
        self._closed.set()
