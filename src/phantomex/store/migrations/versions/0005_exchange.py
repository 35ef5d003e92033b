"""exchange credentials (encrypted)

Revision ID: 0005_exchange
Revises: 0004_optimize
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import phantomex.store.base

revision: str = "0005_exchange"
down_revision: str | None = "0004_optimize"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exchange_credentials",
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("api_key_encrypted", sa.Text(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("updated_at", phantomex.store.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("venue"),
    )


def downgrade() -> None:
    op.drop_table("exchange_credentials")
