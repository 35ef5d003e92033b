"""``phantomex db backup / restore / check`` on real databases and a real, writing server."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from conftest import CLI, free_port, run_cli, serve, server_env

from phantomex.cli.db import database_to_back_up
from phantomex.store.backup import BackupError, check_sqlite, pg_dump_command, run_pg
from phantomex.store.repo import Store


def trades(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT count(*) FROM trades").fetchone()[0])
    finally:
        con.close()


def test_backup_while_writing_then_restore_and_audit(tmp_path: Path) -> None:
    live = tmp_path / "live"
    copies = []
    with serve(live, PHANTOMEX_REPLAY_SPEED="3000") as srv:
        for i in range(3):  # the kernel commits a tick every few milliseconds meanwhile
            time.sleep(1.5)
            dest = tmp_path / f"backup-{i}.db"
            rc, out, err = srv.cli("db", "backup", str(dest))
            assert rc == 0, out + err
            copies.append(dest)
        rc, out, err = srv.cli("db", "restore", str(copies[-1]), "--yes")
        assert rc == 1 and "is running" in err
        ticks = srv.get("/health")["ticks"]
    assert ticks > 0
    assert trades(copies[-1]) > 0, "no trade in the backup: the test proved nothing"
    for copy in copies:
        assert check_sqlite(copy).trades == trades(copy)
        assert not Path(f"{copy}-wal").exists()  # one self-contained file

    # restore the last backup into a fresh data dir and into the (stopped) live one
    for target in (tmp_path / "fresh", live):
        env = server_env(free_port(), target)
        rc, out, err = run_cli("db", "restore", str(copies[-1]), "--yes", env=env)
        assert rc == 0, out + err
        assert trades(target / "phantomex.db") == trades(copies[-1])
        rc, out, err = run_cli("audit", "--offline", env=env)
        assert rc == 0 and "audit passed" in out, out + err
    assert list(live.glob("phantomex.pre-restore-*.db")), "the replaced database was not kept"
    with serve(live, PHANTOMEX_REPLAY_SPEED="3000") as srv:  # the restored database serves
        assert srv.get("/api/audit")["ok"]
        assert srv.get("/api/trades")["total"] >= trades(copies[-1])


def test_restore_refuses_a_damaged_or_foreign_file(tmp_path: Path) -> None:
    env = server_env(free_port(), tmp_path / "data")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.close()
    for bad in (garbage, foreign, tmp_path / "missing.db"):
        rc, out, err = run_cli("db", "restore", str(bad), "--yes", env=env)
        assert rc == 1 and "restore failed" in err, out + err
        assert not (tmp_path / "data" / "phantomex.db").exists()
    rc, _, err = run_cli("db", "check", str(garbage), env=env)
    assert rc == 1 and "check failed" in err


def test_check_rejects_an_unknown_migration(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    Store(f"sqlite:///{db}").close()
    assert check_sqlite(db).trades == 0
    con = sqlite3.connect(db)
    con.execute("UPDATE alembic_version SET version_num = 'from_the_future'")
    con.commit()
    con.close()
    with pytest.raises(BackupError, match="does not know"):
        check_sqlite(db)


def test_postgres_dump_and_restore(tmp_path: Path, postgres: object) -> None:
    """pg_dump of a database with trades, pg_restore into another, then the audit there."""
    from postgres_server import PostgresServer

    assert isinstance(postgres, PostgresServer)
    source = postgres.new_database()
    data = tmp_path / "data"
    with serve(data, PHANTOMEX_REPLAY_SPEED="3000", PHANTOMEX_DB_URL=source) as srv:
        time.sleep(2)
        dump = tmp_path / "phantomex.dump"
        rc, out, err = srv.cli("db", "backup", str(dump))
        assert rc == 0, out + err
        assert srv.get("/api/trades")["total"] > 0
    target = postgres.new_database()
    env = server_env(free_port(), data, PHANTOMEX_DB_URL=target)
    rc, out, err = run_cli("db", "restore", str(dump), "--yes", env=env)
    assert rc == 0, out + err
    rc, out, err = run_cli("audit", "--offline", env=env)
    assert rc == 0 and "audit passed" in out, out + err
    store = Store(target, run_migrations=False)
    try:
        assert store.trades()[1] > 0
    finally:
        store.close()
    with pytest.raises(BackupError, match="pg_dump failed"):
        run_pg(pg_dump_command(target.replace(target.rsplit("/", 1)[1], "nope"), dump))


def test_backup_copies_the_running_servers_database_not_the_one_in_this_folder(
    tmp_path: Path,
) -> None:
    """Run from a folder holding an empty ./data/phantomex.db while the server writes another:
    the backup is the server's, and says so; with the server stopped it is this folder's."""
    elsewhere = tmp_path / "elsewhere"
    Store(f"sqlite:///{elsewhere / 'data' / 'phantomex.db'}").close()  # 0 trades
    dest = tmp_path / "backup.db"
    with serve(tmp_path / "live", PHANTOMEX_REPLAY_SPEED="3000") as srv:
        deadline = time.monotonic() + 60
        while srv.get("/api/trades")["total"] == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        env = {k: v for k, v in srv.env.items() if k != "PHANTOMEX_DATA_DIR"}  # ./data here
        proc = subprocess.run(
            [*CLI, "db", "backup", str(dest)],
            env=env, cwd=elsewhere, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        served = (tmp_path / "live" / "phantomex.db").resolve()
        assert f"the running server's database {served}" in proc.stdout
    assert trades(dest) > 0, "the backup is not the server's database"

    proc = subprocess.run(
        [*CLI, "db", "backup", str(dest)],
        env=env, cwd=elsewhere, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no server answers" in proc.stdout
    assert str((elsewhere / "data" / "phantomex.db").resolve()) in proc.stdout
    assert trades(dest) == 0


def test_which_database_a_backup_takes() -> None:
    here = "sqlite:////srv/px/phantomex.db"
    assert database_to_back_up(here, None, "http://x") == here  # no server: this folder's
    with pytest.raises(BackupError, match=r"writes /nowhere/phantomex.db, which is not on this"):
        database_to_back_up(here, {"backend": "sqlite", "path": "/nowhere/phantomex.db"}, "u")
    pg = "postgresql+psycopg://px:secret@db:5432/px"
    shown = {"backend": "postgresql", "path": None, "url": "postgresql+psycopg://px:***@db:5432/px"}
    assert database_to_back_up(pg, shown, "http://x") == pg  # the same, with its password
    with pytest.raises(BackupError, match=r"writes postgresql\+psycopg://px:\*\*\*@db:5432/px"):
        database_to_back_up(here, shown, "http://x")


def test_migrate_brings_a_database_to_the_newest_migration(tmp_path: Path) -> None:
    env = server_env(free_port(), tmp_path)
    rc, out, err = run_cli("db", "migrate", "--data-dir", str(tmp_path), env=env)
    assert rc == 0, err
    checked = check_sqlite(tmp_path / "phantomex.db")
    assert f"is at migration {checked.revision}" in out
    rc, out, err = run_cli("db", "migrate", "--data-dir", str(tmp_path), env=env)  # idempotent
    assert rc == 0 and checked.revision in out, err
