"""``phantomex sources``: each market source's health (last update, age, staleness, errors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from phantomex.cli.client import Api
from phantomex.cli.fittable import FitTable, key, text
from phantomex.cli.output import console, print_json, t
from phantomex.formatting import when


def age(seconds: Any) -> str:
    if seconds is None:
        return "never"
    s = float(seconds)
    return f"{s:.0f}s" if s < 120 else f"{s / 60:.0f}m" if s < 7200 else f"{s / 3600:.1f}h"


def sources_table(rows: list[dict[str, Any]]) -> FitTable:
    table = FitTable(
        key("source"),
        key("state"),
        text("last update"),
        key("age", right=True),
        text("errors", min_width=8),
        text("last error", min_width=16, detail=True),
        text("stale prices", min_width=8),
        title="Market sources",
    )
    for row in rows:
        stale_prices = [s for s, p in sorted(row.get("prices", {}).items()) if p["stale"]]
        table.add_row(
            t(row["source"]),
            t("stale", "red") if row["stale"] else t("ok", "green"),
            when(row["last_update"]),
            t(age(row["age_seconds"])),
            t(f"{row['errors']} ({row['consecutive_errors']} in a row)"),
            t(row["last_error"]),
            t(", ".join(stale_prices) or "none"),
        )
    return table


def register(app: typer.Typer, client: Callable[[], Api]) -> None:
    """Add the ``sources`` command to ``app``; ``client`` gives the API client."""

    @app.command("sources")
    def sources(
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the API's JSON instead of tables.")
        ] = False,
    ) -> None:
        """Market sources and their health: last update, age, staleness and errors."""
        rows = client().get("/api/sources")["sources"]
        if as_json:
            print_json(rows)
            return
        console.print(sources_table(rows))
