"""The cyclic garbage collector around a backtest: paused while the research engine runs,
resumed for the exact kernel, skipped at exit."""

from __future__ import annotations

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collections_paused() -> Iterator[None]:
    """No passes of the cyclic garbage collector during a run on the research engine (~0.2-0.4
    s of a 1M-bar fast backtest went on them: numba's registries, the trade records), as none
    are needed to free its memory; the exact kernel resumes them while it runs
    (:func:`phantomex.cli.backtest.exact_run`). What the command started with and what it
    made are frozen (out of later passes, freed by reference counting as usual), so a pass
    after it does not walk them all; settings as before afterwards (the command may run
    inside a test runner)."""
    was = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was:
            gc.enable()


@contextmanager
def collections_resumed() -> Iterator[None]:
    """The collector's passes as usual inside :func:`collections_paused` (for the exact
    kernel, whose per-bar objects may form cycles)."""
    if gc.isenabled():
        yield
        return
    gc.freeze()
    gc.enable()
    try:
        yield
    finally:
        gc.freeze()
        gc.disable()


def skip_exit_gc() -> None:
    """Spare the garbage collector's passes over a run's objects (millions of bars) when the
    process ends: at exit, before the interpreter's final collections, everything is frozen
    (``gc.freeze``) and then freed by reference counting as usual. Not ``os._exit``: that
    would skip the exit handlers (log flushing, temporary files) and, called from a test runner
    that invokes the command in-process, end the runner."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
