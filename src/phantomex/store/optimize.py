"""Optimisation trials kept in the project's database, so a study can be resumed.

Optuna's own RDB storage keeps its schema version in ``alembic_version``, the table PhantomEx's
migrations use too, so the two cannot share one database. Instead every finished trial is a row
here, and a resumed study is rebuilt from them in memory (see ``research/optimize.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from phantomex.store.optimize_tables import OptimizationTrialRow

if TYPE_CHECKING:
    from phantomex.store.repo import Store


def save_trial(store: Store, row: OptimizationTrialRow) -> None:
    with store.session() as s:
        s.add(row)


def load_trials(store: Store, study: str) -> list[OptimizationTrialRow]:
    with store.session() as s:
        rows = s.scalars(
            select(OptimizationTrialRow)
            .where(OptimizationTrialRow.study == study)
            .order_by(OptimizationTrialRow.number)
        )
        return list(rows)
