"""Builds the research engine's compiled functions ahead of time into an extension module
beside this file (``make`` runs ``python -m phantomex.research.fast.aot``), so a backtest
imports neither numba nor LLVM: about half a second of a ``phantomex backtest`` process.

numba's ``pycc`` compiles the same functions the just-in-time path runs, for this machine's
CPU, and needs a C compiler; without one, or when the build fails, the engine compiles just in
time as before (:mod:`phantomex.research.fast.compiled`)."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from phantomex.research.fast.compiled import HERE, module_name

_A = "f8[::1]"
_I = "i8[::1]"
#: Exported name → (module, function, signature). ``pycc`` compiles exports in name order,
#: and compiles the loop wrongly typed when ``rsi_series`` (which shares an inlined helper
#: with it) comes first, so the loop's name sorts first.
EXPORTS = {
    "loop": (
        "loop",
        "simulate",
        f"Tuple((i8, {_I}, i1[::1], {_A}, {_A}, {_A}, i1[::1], {_A}, i8, i8, i8))("
        f"{_A}, {_A}, {_I}, {_I}, i8, i8, i8, f8, f8, i8, i8, {_A}, {_A}, f8, f8, f8, f8, b1, i8, "
        "f8, f8, i8, f8, f8, i8, f8, b1, f8, b1)",
    ),
    "between": ("checks", "between", f"b1({_A}, f8, f8)"),
    "steady": ("checks", "steady", f"b1({_A}, {_A}, f8, f8)"),
    "sma_series": ("indicators", "sma_series", f"{_A}({_A}, i8)"),
    "ema_series": ("indicators", "ema_series", f"{_A}({_A}, i8)"),
    "rsi_series": ("indicators", "rsi_series", f"Tuple(({_A}, {_A}))({_A}, i8)"),
}


def build(out_dir: Path, *, cpu: str = "host") -> Path:
    """Compile :data:`EXPORTS` into ``out_dir`` (the current sources' module name) and remove
    modules built from other sources there. Returns the module's path."""
    import importlib

    from numba.pycc import CC

    name = module_name()
    cc = CC(name)
    cc.output_dir = str(out_dir)
    cc.target_cpu = cpu
    for exported, (module, function, signature) in EXPORTS.items():
        dispatcher = getattr(importlib.import_module(f"{__package__}.{module}"), function)
        cc.export(exported, signature)(dispatcher.py_func)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pycc's pending deprecation
        cc.compile()
    for stale in out_dir.glob("_aot_*"):
        if not stale.name.startswith(f"{name}."):
            stale.unlink()
    return next(out_dir.glob(f"{name}.*"))


def main(argv: list[str] | None = None) -> int:
    """Build unless a module for the current sources is there; 1 if the build failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="the directory to build into")
    args = parser.parse_args(argv)
    out: Path = args.out
    present = sorted(out.glob(f"{module_name()}.*"))
    if present:
        print(f"research engine: compiled ahead of time ({present[0].name})")
        return 0
    try:
        path = build(out)
    except Exception as error:  # any failure leaves the just-in-time path, which works
        print(
            f"research engine: the ahead-of-time build failed ({error}); numba will compile "
            "it just in time instead (about 0.5 s more per backtest process)",
            file=sys.stderr,
        )
        return 1
    print(f"research engine: compiled ahead of time ({path.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
