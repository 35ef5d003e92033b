"""Options and arguments shared by the CLI's commands."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of tables.")]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Directory of the database, log and pid file.", show_default=False
    ),
]
AgentArg = Annotated[str, typer.Argument(help="Agent id (or unique id prefix) or name.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


class ModeChoice(enum.StrEnum):
    autonomous = "autonomous"
    advisory = "advisory"


DecisionArg = Annotated[
    str, typer.Argument(help="Decision id (or unique prefix of a pending one).")
]
