"""The audit: every wallet against a rebuild from its stored fills and deposits."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from phantomex.config import Settings


@dataclass(frozen=True, slots=True)
class AuditResult:
    wallets: int
    mismatches: list[dict[str, Any]]  # agent_id, field, expected, actual, message

    @property
    def ok(self) -> bool:
        return not self.mismatches


class AuditUnavailable(Exception):
    """The database cannot be read (missing file, old schema, …)."""


def sqlite_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(url[len(prefix) :]) if url.startswith(prefix) else None


def offline_audit(settings: Settings) -> tuple[AuditResult, dict[str, str]]:
    """Reconcile the stored wallets with the stored history, without a running server.

    Returns the result and the agent names by id (deleted agents included)."""
    from sqlalchemy.exc import SQLAlchemyError

    from phantomex.ledger.reconcile import reconcile
    from phantomex.serialize import jsonable
    from phantomex.store.repo import Store

    url = settings.database_url
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise AuditUnavailable(f"no database at {path}")
    try:
        store = Store(url, run_migrations=False)
    except SQLAlchemyError as exc:
        raise AuditUnavailable(f"cannot open the database {url}: {exc}") from exc
    try:
        wallets = store.load_wallets()
        entries = store.ledger_entries()
        names = store.agent_names()
    except SQLAlchemyError as exc:
        raise AuditUnavailable(f"cannot read the database {url}: {exc.__class__.__name__}") from exc
    finally:
        store.close()
    mismatches = [jsonable(m) | {"message": str(m)} for m in reconcile(wallets, entries)]
    return AuditResult(len(wallets), mismatches), names


def difference(expected: Any, actual: Any) -> str | None:
    """``actual - expected`` when both are numbers."""
    try:
        diff = Decimal(str(actual)) - Decimal(str(expected))
    except (InvalidOperation, ValueError):
        return None
    return f"{diff:+f}" if diff.is_finite() else None


def describe(m: dict[str, Any], names: dict[str, str]) -> str:
    agent_id = str(m.get("agent_id"))
    who = f"agent {agent_id} ({names[agent_id]})" if agent_id in names else f"agent {agent_id}"
    line = f"{who}: {m.get('field')} is {m.get('actual')}, history says {m.get('expected')}"
    diff = difference(m.get("expected"), m.get("actual"))
    return f"{line} (difference {diff})" if diff is not None else line
