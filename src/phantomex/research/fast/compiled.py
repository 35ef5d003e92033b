"""The research engine's compiled functions. They come from the extension module ``make``
builds ahead of time (:mod:`phantomex.research.fast.aot`), so a run imports neither numba nor
LLVM, when one was built from the current sources; otherwise numba compiles them just in time
(and caches them). ``PHANTOMEX_FAST_JIT=1`` asks for the latter."""

from __future__ import annotations

import hashlib
import importlib
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from phantomex.brains.rules import signals

HERE = Path(__file__).parent
#: What the compiled code is made of: a module built from other sources is never loaded.
SOURCES = (
    HERE / "aot.py",
    HERE / "checks.py",
    HERE / "codes.py",
    HERE / "indicators.py",
    HERE / "loop.py",
    Path(signals.__file__),
)


def _cpu() -> bytes:
    """What identifies this machine's CPU to a build for it (its feature flags on Linux)."""
    try:
        with open("/proc/cpuinfo", "rb") as info:
            for line in info:
                if line.startswith(b"flags"):
                    return line
    except OSError:
        pass
    return platform.machine().encode()


def module_name() -> str:
    """The ahead-of-time module's name for the current sources, numpy and CPU."""
    digest = hashlib.sha256(np.__version__.encode() + _cpu())
    for path in SOURCES:
        digest.update(path.read_bytes())
    return f"_aot_{digest.hexdigest()[:16]}"


def ahead_of_time() -> ModuleType | None:
    """The ahead-of-time module built from the current sources, if there is one."""
    if os.environ.get("PHANTOMEX_FAST_JIT", "").strip() not in ("", "0"):
        return None
    try:
        return importlib.import_module(f"{__package__}.{module_name()}")
    except ImportError:
        return None


def _contiguous(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` taking its arrays as the C-contiguous arrays the module was built for."""

    def call(*args: Any) -> Any:
        return function(
            *(np.ascontiguousarray(a) if isinstance(a, np.ndarray) else a for a in args)
        )

    return call


@dataclass(frozen=True)
class Kernels:
    """The compiled functions the research engine calls, from one build."""

    simulate: Callable[..., Any]
    sma_series: Callable[..., Any]
    ema_series: Callable[..., Any]
    rsi_series: Callable[..., Any]
    between: Callable[..., Any]
    steady: Callable[..., Any]
    ahead_of_time: bool

    @classmethod
    def of_module(cls, module: ModuleType) -> Kernels:
        """The functions of an ahead-of-time module."""
        simulate, sma, ema, rsi, between, steady = (
            _contiguous(getattr(module, name))
            for name in ("loop", "sma_series", "ema_series", "rsi_series", "between", "steady")
        )
        return cls(simulate, sma, ema, rsi, between, steady, ahead_of_time=True)

    @classmethod
    def just_in_time(cls) -> Kernels:
        """The numba functions (compiled on first call, cached on disk)."""
        from phantomex.research.fast import checks, indicators, loop

        return cls(
            loop.simulate,
            indicators.sma_series,
            indicators.ema_series,
            indicators.rsi_series,
            checks.between,
            checks.steady,
            ahead_of_time=False,
        )


def load() -> Kernels:
    """The ahead-of-time functions when built from the current sources, else numba's."""
    module = ahead_of_time()
    return Kernels.of_module(module) if module is not None else Kernels.just_in_time()


#: The functions the research engine runs on.
ACTIVE = load()
