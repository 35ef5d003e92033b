"""auth: API tokens and dashboard sessions

Revision ID: 0006_auth
Revises: 0005_exchange
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import phantomex.store.base

revision: str = "0006_auth"
down_revision: str | None = "0005_exchange"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", phantomex.store.base.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", phantomex.store.base.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    op.create_table(
        "auth_sessions",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", phantomex.store.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", phantomex.store.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )


def downgrade() -> None:
    op.drop_table("auth_sessions")
    op.drop_table("api_tokens")
