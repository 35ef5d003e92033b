"""Insert-or-update of many rows in one statement, on SQLite, PostgreSQL and others."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import Executable


def upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: Sequence[str]) -> None:
    """Insert ``rows`` (dicts with the same columns, distinct ``keys``), updating those whose
    ``keys`` are stored already: one executemany statement on SQLite and PostgreSQL."""
    if not rows:
        return
    dialect = conn.dialect.name
    columns = tuple(c for c in rows[0] if c not in keys)
    if dialect in ("sqlite", "postgresql"):
        conn.execute(_upsert_statement(dialect, table, tuple(keys), columns), rows)
        return
    for row in rows:  # any other database: update, else insert
        where = [table.c[k] == row[k] for k in keys]
        done = conn.execute(update(table).where(*where).values({c: row[c] for c in columns}))
        if done.rowcount == 0:
            conn.execute(insert(table), [row])


@functools.cache
def _upsert_statement(
    dialect: str, table: Table, keys: tuple[str, ...], columns: tuple[str, ...]
) -> Executable:
    """INSERT .. ON CONFLICT (keys) DO UPDATE SET columns (built once per shape)."""
    stmt = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table)
    if not columns:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    return stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: stmt.excluded[c] for c in columns}
    )
