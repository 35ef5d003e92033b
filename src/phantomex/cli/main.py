"""The ``phantomex`` command. A plain research backtest (``phantomex backtest`` with options
:mod:`phantomex.cli.lean` reads) starts without Typer, Rich or the other commands; everything
else is the whole app, :data:`phantomex.cli.app.app`, which ``app`` here also names."""

from __future__ import annotations

import sys
from typing import Any


def run() -> None:
    """The command line: the lean backtest when it applies, otherwise the whole app."""
    from phantomex.cli.lean import run_lean

    if run_lean(sys.argv[1:]):
        return
    from phantomex.cli.app import app

    app()


def __getattr__(name: str) -> Any:
    """``app`` (the whole Typer app) on first use: importing this module builds nothing."""
    if name == "app":
        from phantomex.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    run()
