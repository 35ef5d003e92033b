"""``phantomex backtest`` without Typer: a command line of the plain form ``backtest --opt value
... --flag`` is read here and run by :func:`phantomex.cli.backtest.backtest`, the function the
Typer command calls, so a research backtest does not pay for importing Typer, Rich and every
other command (~0.1-0.2 s of CPU). Anything else (help, a global option, an unknown or
misspelt option, ``--opt=value``, a value that starts with ``-``, an option of the exact
kernel's LLM or report machinery, ``--blind``) returns False and goes to the whole app, so help
and every parsing error stay Typer's own."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from phantomex.cli.backtest import BacktestOptions, EngineChoice, FillChoice, backtest

#: option -> (field of BacktestOptions, repeatable)
_VALUES: dict[str, tuple[str, bool]] = {
    "--data": ("data", True),
    "--dataset": ("dataset", False),
    "--symbols": ("symbols", False),
    "--from": ("start", False),
    "--to": ("stop", False),
    "--strategy": ("strategy", False),
    "--param": ("param", True),
    "--cash": ("cash", False),
    "--fee-bps": ("fee_bps", False),
    "--slippage-bps": ("slippage_bps", False),
    "--fill": ("fill", False),
    "--risk": ("risk", True),
    "--engine": ("engine", False),
}
_FLAGS: dict[str, tuple[str, bool]] = {
    "--json": ("as_json", True),
    "--llm-cache": ("llm_cache", True),
    "--no-llm-cache": ("llm_cache", False),
}
_CHOICES: dict[str, Any] = {"fill": FillChoice, "engine": EngineChoice}


def lean_options(argv: Sequence[str]) -> BacktestOptions | None:
    """The options of a plain ``backtest`` command line, or None for the whole app."""
    if not argv or argv[0] != "backtest":
        return None
    if os.environ.get("PHANTOMEX_URL") and os.environ.get("PHANTOMEX_SERVER"):
        return None  # the app's callback refuses both
    found: dict[str, Any] = {}
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        if arg in _FLAGS:
            flag, on = _FLAGS[arg]
            found[flag] = on
            continue
        if arg not in _VALUES or not args or args[0].startswith("-"):
            return None
        field, repeatable = _VALUES[arg]
        text = args.pop(0)
        choices = _CHOICES.get(field)
        if choices is not None and text not in choices.__members__:
            return None
        value = text if choices is None else choices(text)
        found[field] = [*found.get(field, []), value] if repeatable else value
    return BacktestOptions(**found)


def run_lean(argv: Sequence[str]) -> bool:
    """Run ``argv`` as the whole app would if :func:`lean_options` reads it (and exit as the
    app exits on an error); False when it does not."""
    options = lean_options(argv)
    if options is None:
        return False
    # numpy's OpenBLAS would start a thread per core at import (~0.1 s of CPU on 2 cores) for
    # linear algebra a backtest does not do; a setting of the user's wins
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        backtest(options)
    except Exception as exc:
        _exit(exc)
    except KeyboardInterrupt:
        sys.exit(130)  # as the app
    return True


def _exit(exc: Exception) -> None:
    """Leave as the Typer app leaves on ``exc``: ``fail``'s exit with its code, a broken pipe
    quietly with 1, anything else through Typer's exception hook."""
    import errno

    from typer import Exit

    if isinstance(exc, Exit):
        sys.exit(exc.exit_code)
    if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
        from typer._click.utils import PacifyFlushWrapper

        sys.stdout = PacifyFlushWrapper(sys.stdout)
        sys.stderr = PacifyFlushWrapper(sys.stderr)
        sys.exit(1)
    from typer import main as typer_main

    from phantomex.cli.app import app

    sys.excepthook = typer_main.except_hook
    config = typer_main.DeveloperExceptionConfig(
        pretty_exceptions_enable=app.pretty_exceptions_enable,
        pretty_exceptions_show_locals=app.pretty_exceptions_show_locals,
        pretty_exceptions_short=app.pretty_exceptions_short,
    )
    setattr(exc, typer_main._typer_developer_exception_attr_name, config)
    raise exc
