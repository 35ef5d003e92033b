"""Backups of the database: SQLite's online backup API, PostgreSQL's pg_dump and pg_restore.

A SQLite backup is taken while the server runs: the backup API copies every page in one step
under a read transaction, which in WAL mode never blocks the kernel's writes and always sees a
committed state. The copy is written next to the target, switched out of WAL mode so that it is
one self-contained file, checked, synced and only then renamed into place.

A restore first checks the backup (``PRAGMA integrity_check`` and a migration this code knows),
keeps the current database as ``<name>.pre-restore-<time>.db``, then copies the backup in through
the same API, which also rewrites the WAL of the target correctly.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic.script import ScriptDirectory

from phantomex.store.db import MIGRATIONS

BUSY_MS = 30_000  # a backup waits this long for the writer's lock instead of failing


class BackupError(Exception):
    """The backup or restore could not be done; nothing was changed."""


@dataclass(frozen=True, slots=True)
class Checked:
    """What a database file holds: its migration and how many trades."""

    path: Path
    revision: str
    trades: int


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL, None for other databases."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.endswith(":memory:"):
        return None
    return Path(url[len(prefix) :])


def known_revisions() -> tuple[set[str], str]:
    """Every migration revision this code ships, and the newest one."""
    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head()
    assert head is not None
    return {r.revision for r in script.walk_revisions()}, head


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=BUSY_MS / 1000, isolation_level=None)
    con.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    return con


def check_sqlite(path: Path) -> Checked:
    """Raise BackupError unless ``path`` is an intact PhantomEx database of a known migration."""
    if not path.is_file():
        raise BackupError(f"no file at {path}")
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            result = [row[0] for row in con.execute("PRAGMA integrity_check")]
            if result != ["ok"]:
                raise BackupError(f"{path} fails the integrity check: {'; '.join(result[:5])}")
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
            trades = con.execute("SELECT count(*) FROM trades").fetchone()[0]
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a PhantomEx database: {exc}") from exc
    known, _ = known_revisions()
    if row is None or row[0] not in known:
        raise BackupError(
            f"{path} has migration {row[0] if row else None!r}, which this version does not know"
        )
    return Checked(path, row[0], int(trades))


def backup_sqlite(db: Path, dest: Path) -> Checked:
    """Copy the live database ``db`` to ``dest`` (consistent while the server writes)."""
    if not db.is_file():
        raise BackupError(f"no database at {db}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.partial")
    tmp.unlink(missing_ok=True)
    try:
        src, dst = _connect(db), sqlite3.connect(tmp, isolation_level=None)
        try:
            src.backup(dst)  # all pages in one step: one consistent snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
        finally:
            dst.close()
            src.close()
        checked = check_sqlite(tmp)
        _fsync(tmp)
        os.replace(tmp, dest)
        _fsync(dest.parent)
    except (sqlite3.Error, OSError) as exc:
        raise BackupError(f"backup of {db} failed: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return Checked(dest, checked.revision, checked.trades)


def restore_sqlite(backup: Path, db: Path) -> tuple[Checked, Path | None]:
    """Replace ``db`` with ``backup`` (the server must be stopped). Returns the checked backup and
    where the previous database was kept (None if there was none)."""
    checked = check_sqlite(backup)
    kept = None
    try:
        if db.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            kept = db.with_name(f"{db.stem}.pre-restore-{stamp}.db")
            backup_sqlite(db, kept)
        db.parent.mkdir(parents=True, exist_ok=True)
        src, dst = _connect(backup), _connect(db)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=WAL")
            dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            dst.close()
            src.close()
    except (sqlite3.Error, OSError) as exc:
        raise BackupError(f"restore into {db} failed: {exc}") from exc
    check_sqlite(db)
    return checked, kept


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- PostgreSQL ------------------------------------------------------------------------------------
def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://…``) as the libpq URL pg_dump understands."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


def pg_dump_command(url: str, dest: Path) -> list[str]:
    """pg_dump in its custom format: compressed, restored selectively with pg_restore."""
    return ["pg_dump", "--format=custom", "--no-owner", f"--file={dest}", libpq_url(url)]


def pg_restore_command(url: str, backup: Path) -> list[str]:
    """pg_restore into an existing database, replacing our tables in one transaction."""
    return [
        "pg_restore",
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={libpq_url(url)}",
        str(backup),
    ]


def run_pg(cmd: list[str], tool_dir: Path | None = None) -> None:
    """Run a PostgreSQL client tool (from ``tool_dir`` if given); BackupError on failure."""
    exe = str(tool_dir / cmd[0]) if tool_dir else shutil.which(cmd[0])
    if exe is None:
        raise BackupError(f"{cmd[0]} is not installed (Debian: apt-get install postgresql-client)")
    proc = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BackupError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()}")
