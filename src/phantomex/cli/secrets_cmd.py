"""``phantomex secrets rotate``: re-encrypt every stored API key under a new key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from phantomex.cli import server
from phantomex.cli.client import fail
from phantomex.cli.output import say

secrets_app = typer.Typer(help="Encrypted API keys.", no_args_is_help=True)


@secrets_app.command("rotate")
def rotate(
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Directory of the database and key.", show_default=False),
    ] = None,
) -> None:
    """Re-encrypt every stored secret under a new key (atomically; the server must be stopped)."""
    from phantomex import rotation
    from phantomex.config import load_settings
    from phantomex.secrets import SecretError
    from phantomex.store.repo import Store

    try:
        settings = load_settings(data_dir=data_dir)
    except Exception as exc:
        fail(f"invalid settings: {exc}")
    pid = server.running_pid(settings)
    if pid is not None:
        fail(f"PhantomEx is running (pid {pid}): stop it first (`phantomex stop`), then rotate")
    store = Store(settings.database_url)
    try:
        done = rotation.rotate(store, settings.data_dir)
    except SecretError as exc:
        fail(f"error: {exc}; nothing was changed")
    finally:
        store.close()
    where = (
        f"new key in {done.key_file}" if done.key_file else "under PHANTOMEX_SECRET_KEY's first key"
    )
    say(f"re-encrypted {done.secrets} secret(s), {where}")


def register(app: typer.Typer) -> None:
    """Add ``phantomex secrets …`` to ``app``."""
    app.add_typer(secrets_app, name="secrets")
