"""Tables of the optimizer: one row per finished trial of a study (``store/optimize.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from phantomex.store.base import Base


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
