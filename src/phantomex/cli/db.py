"""``phantomex db backup | restore | check``: the database's backups (see ``store/backup.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from phantomex.cli import server
from phantomex.cli.client import Api, ApiError, NotRunning, fail
from phantomex.cli.output import say

if TYPE_CHECKING:
    from phantomex.config import Settings

FileArg = Annotated[Path, typer.Argument(help="The backup file.", show_default=False)]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Directory of the database and pid file.", show_default=False),
]


def _shown(url: str) -> str:
    """A database for a message: the SQLite file, or the URL without its password."""
    from sqlalchemy.engine import make_url

    from phantomex.store import backup as bk

    db = bk.sqlite_file(url)
    return str(db) if db is not None else make_url(url).render_as_string(hide_password=True)


def database_to_back_up(local_url: str, served: dict[str, Any] | None, server_url: str) -> str:
    """The database ``db backup`` copies: the one the server at ``server_url`` writes
    (``served``: its ``GET /api/system/database``; None when no server answers), else
    ``local_url``, this command's settings' own. Raises BackupError, naming both, when the
    server's database cannot be reached from here."""
    from sqlalchemy.engine import make_url

    from phantomex.store import backup as bk

    if served is None:
        return local_url
    path = served.get("path")
    if path:
        if Path(path).is_file():
            return f"sqlite:///{path}"
        raise bk.BackupError(
            f"the server at {server_url} writes {path}, which is not on this machine: run the "
            f"backup where the server runs, or give --data-dir to back up another database "
            f"(this folder's settings name {_shown(local_url)})"
        )
    if served.get("url") == make_url(local_url).render_as_string(hide_password=True):
        return local_url  # the same database, with the password from this command's settings
    raise bk.BackupError(
        f"the server at {server_url} writes {served.get('url')}, but this command's settings name "
        f"{_shown(local_url)}: set PHANTOMEX_DB_URL to the server's database (with its password)"
    )


def _served(client: Api) -> dict[str, Any] | None:
    """The running server's answer to which database it writes; None if none runs."""
    try:
        answer: dict[str, Any] = client.request("GET", "/api/system/database")
    except NotRunning:
        return None
    except ApiError as exc:
        fail(
            f"backup refused: cannot ask the server at {client.url} which database it writes "
            f"({exc}); give --data-dir to name the database to back up"
        )
    return answer


def register(
    app: typer.Typer,
    settings_from: Callable[..., Settings],
    api_for: Callable[[Settings], Api],
) -> None:
    """Add the ``db`` command group to ``app``; ``api_for`` gives the client of the server that
    some settings name."""
    db_app = typer.Typer(help="Back up, restore and check the database.", no_args_is_help=True)
    app.add_typer(db_app, name="db")

    @db_app.command("backup")
    def backup_cmd(file: FileArg, data_dir: DataDirOpt = None) -> None:
        """Copy the running server's database to FILE (with --data-dir, that directory's);
        safe while the server runs (SQLite backup API, pg_dump)."""
        from phantomex.store import backup as bk

        settings = settings_from(data_dir=data_dir)
        client = api_for(settings)
        served = None if data_dir is not None else _served(client)
        try:
            url = database_to_back_up(settings.database_url, served, client.url)
            source = _shown(url)
            if served is not None:
                source = f"the running server's database {source}"
            elif data_dir is None:
                source += f" (no server answers at {client.url})"
            db = bk.sqlite_file(url)
            if db is None:
                bk.run_pg(bk.pg_dump_command(url, file))
                say(f"PostgreSQL dump of {source} written to {file} (restore: db restore {file})")
                return
            checked = bk.backup_sqlite(db, file)
        except bk.BackupError as exc:
            fail(f"backup failed: {exc}")
        say(
            f"backup of {source} written to {file}: migration {checked.revision}, "
            f"{checked.trades} trades"
        )

    @db_app.command("restore")
    def restore_cmd(
        file: FileArg,
        data_dir: DataDirOpt = None,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    ) -> None:
        """Replace the database with FILE (the server must be stopped; the old one is kept)."""
        from phantomex.store import backup as bk

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

    @db_app.command("migrate")
    def migrate_cmd(data_dir: DataDirOpt = None) -> None:
        """Bring the database to this version's newest migration (the server does it on start
        too; ``server deploy`` runs it before the restart so a failing migration stops there)."""
        from phantomex.store import backup as bk
        from phantomex.store.repo import Store

        settings = settings_from(data_dir=data_dir)
        try:
            Store(settings.database_url).close()
        except Exception as exc:
            fail(f"migration failed on {_shown(settings.database_url)}: {exc}")
        say(f"{_shown(settings.database_url)} is at migration {bk.known_revisions()[1]}")

    @db_app.command("check")
    def check_cmd(file: FileArg) -> None:
        """Check that FILE is an intact SQLite database of a migration this version knows."""
        from phantomex.store import backup as bk

        try:
            checked = bk.check_sqlite(file)
        except bk.BackupError as exc:
            fail(f"check failed: {exc}")
        say(f"{file} is intact: migration {checked.revision}, {checked.trades} trades")
