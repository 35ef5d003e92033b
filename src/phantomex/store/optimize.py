"""Optimisation trials kept in the project's database, so a study can be resumed.

Optuna's own RDB storage keeps its schema version in ``alembic_version``, the table PhantomEx's
migrations use too, so the two cannot share one database. Instead every finished trial is a row
here, and a resumed study is rebuilt from them in memory (see ``research/optimize.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from phantomex.store.models import Base

if TYPE_CHECKING:
    from phantomex.store.repo import Store


class OptimizationTrialRow(Base):
    """One finished trial of a study: its parameters, objective value and metrics."""

    __tablename__ = "optimization_trials"
    __table_args__ = (UniqueConstraint("study", "number", name="uq_optimization_trial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study: Mapped[str] = mapped_column(String(200), index=True)
    number: Mapped[int]
    state: Mapped[str] = mapped_column(String(16))  # complete | fail
    params: Mapped[dict[str, Any]]
    value: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]]
    study_config: Mapped[dict[str, Any]]  # what the study searches (checked on resume)
    created_at: Mapped[datetime]


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
