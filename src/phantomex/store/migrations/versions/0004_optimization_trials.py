"""optimisation trials

Revision ID: 0004_optimize
Revises: 0003_sessions
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import phantomex.store.base

revision: str = "0004_optimize"
down_revision: str | None = "0003_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "optimization_trials",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study", sa.String(length=200), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("study_config", sa.JSON(), nullable=False),
        sa.Column("created_at", phantomex.store.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("study", "number", name="uq_optimization_trial"),
    )
    with op.batch_alter_table("optimization_trials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_optimization_trials_study"), ["study"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("optimization_trials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_optimization_trials_study"))
    op.drop_table("optimization_trials")
