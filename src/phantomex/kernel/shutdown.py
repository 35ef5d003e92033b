"""Graceful shutdown: stop taking ticks, let in-flight decisions finish or record them abandoned.

The order matters:
1. the feed closes, so the tick loop ends after the tick it is in (whole: one transaction);
2. slow (LLM) decisions still thinking get ``grace`` seconds to finish and be applied as usual;
3. those still thinking are cancelled and each is recorded as a hold saying it was abandoned, so
   the audit trail shows what happened and the agent decides afresh after the restart.
Nothing is cancelled inside a transaction: the kernel applies a decision without awaiting, so a
cancelled task is one still waiting on its model or on the kernel's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from phantomex.kernel.runtime import Kernel

log = logging.getLogger(__name__)

GRACE_SECONDS = 5.0  # fits docker stop's 10 s and systemd's TimeoutStopSec
TICK_SECONDS = 10.0  # the tick in progress gets this long to commit before it is cancelled


async def shutdown(kernel: Kernel, run: asyncio.Task[None], grace: float = GRACE_SECONDS) -> None:
    """Stop ``kernel`` (whose tick loop is ``run``) without losing or half-writing anything."""
    kernel.feed.close()
    await _finish(run, TICK_SECONDS)
    thinking = dict(kernel.thinking())
    if thinking:
        log.info("shutdown: waiting up to %gs for %d decision(s)", grace, len(thinking))
        await asyncio.wait(thinking.values(), timeout=grace)
    kernel.stop()  # cancels the decisions still thinking
    for agent_id, task in thinking.items():
        if task.done() and not task.cancelled():
            continue
        with contextlib.suppress(asyncio.CancelledError):
            await task
        agent = kernel.agents.get(agent_id)
        if agent is None:
            continue
        async with kernel.lock:
            reason = f"abandoned: the server shut down before the decision ended ({grace:g}s)"
            try:
                with kernel.unit():
                    kernel.abandon(agent, reason)
            except Exception:  # logged by unit(); nothing of it was written
                log.exception("could not record the abandoned decision of %s", agent.name)
        log.info("shutdown: decision of %s abandoned", agent.name)


async def _finish(task: asyncio.Task[None], timeout: float) -> None:
    """Wait for ``task`` to end by itself; cancel it (rolling back its transaction) after that."""
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
