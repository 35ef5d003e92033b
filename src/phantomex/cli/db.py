"""``phantomex db backup | restore | check``: the database's backups (see ``store/backup.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from phantomex.cli import server
from phantomex.cli.client import fail
from phantomex.cli.output import say
from phantomex.config import Settings
from phantomex.store import backup as bk

FileArg = Annotated[Path, typer.Argument(help="The backup file.", show_default=False)]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Directory of the database and pid file.", show_default=False),
]


def register(app: typer.Typer, settings_from: Callable[..., Settings]) -> None:
    """Add the ``db`` command group to ``app``."""
    db_app = typer.Typer(help="Back up, restore and check the database.", no_args_is_help=True)
    app.add_typer(db_app, name="db")

    @db_app.command("backup")
    def backup_cmd(file: FileArg, data_dir: DataDirOpt = None) -> None:
        """Copy the database to FILE; safe while the server runs (SQLite backup API, pg_dump)."""
        settings = settings_from(data_dir=data_dir)
        url = settings.database_url
        db = bk.sqlite_file(url)
        try:
            if db is None:
                bk.run_pg(bk.pg_dump_command(url, file))
                say(f"PostgreSQL dump written to {file} (restore: phantomex db restore {file})")
                return
            checked = bk.backup_sqlite(db, file)
        except bk.BackupError as exc:
            fail(f"backup failed: {exc}")
        say(f"backup written to {file}: migration {checked.revision}, {checked.trades} trades")

    @db_app.command("restore")
    def restore_cmd(
        file: FileArg,
        data_dir: DataDirOpt = None,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    ) -> None:
        """Replace the database with FILE (the server must be stopped; the old one is kept)."""
        settings = settings_from(data_dir=data_dir)
        pid = server.running_pid(settings)
        if pid is not None:
            fail(f"PhantomEx is running (pid {pid}): stop it first with `phantomex stop`")
        url = settings.database_url
        db = bk.sqlite_file(url)
        if not yes and not typer.confirm(f"Replace the database {db or url} with {file}?"):
            raise typer.Exit(1)
        try:
            if db is None:
                if not file.is_file():
                    raise bk.BackupError(f"no file at {file}")
                bk.run_pg(bk.pg_restore_command(url, file))
                say(f"PostgreSQL database restored from {file}")
                return
            checked, kept = bk.restore_sqlite(file, db)
        except bk.BackupError as exc:
            fail(f"restore failed: {exc}")
        say(f"restored {db} from {file}: migration {checked.revision}, {checked.trades} trades")
        if kept is not None:
            say(f"the previous database is kept as {kept}")

    @db_app.command("check")
    def check_cmd(file: FileArg) -> None:
        """Check that FILE is an intact SQLite database of a migration this version knows."""
        try:
            checked = bk.check_sqlite(file)
        except bk.BackupError as exc:
            fail(f"check failed: {exc}")
        say(f"{file} is intact: migration {checked.revision}, {checked.trades} trades")
