"""Tables of the auth feature: API tokens and sessions.

Only SHA-256 digests of tokens and session ids are stored, never the secrets themselves."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from phantomex.store.base import Base


class ApiTokenRow(Base):
    """An API token for the CLI and scripts; ``prefix`` identifies it in listings."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class SessionRow(Base):
    """A dashboard login session (the cookie holds the id, the table its digest)."""

    __tablename__ = "auth_sessions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
