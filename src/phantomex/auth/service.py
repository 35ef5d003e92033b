"""Credentials over the store: the argon2 password hash, API tokens and login sessions.

Tokens and session ids are 256-bit random strings; only their SHA-256 digests are stored (a
slow hash adds nothing for secrets that cannot be guessed). The password is hashed with argon2id.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update

from phantomex.store.auth_tables import ApiTokenRow, SessionRow
from phantomex.store.models import SettingRow
from phantomex.store.repo import Store

STATE_KEY = "auth"
TOKEN_PREFIX = "phx_"
SESSION_TTL = timedelta(hours=12)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MIN_PASSWORD = 8

_hasher = PasswordHasher()


class AuthError(ValueError):
    """A request the credentials store refuses (bad name, duplicate, unknown token)."""


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(session_id: str) -> str:
    """The CSRF token bound to a session: the page reads it from a cookie and sends it back in
    the ``X-CSRF-Token`` header; another site can neither read it nor derive it."""
    return digest(f"csrf:{session_id}")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"the password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _info(row: ApiTokenRow) -> TokenInfo:
    return TokenInfo(row.id, row.name, row.prefix, row.created_at, row.revoked_at)


class AuthService:
    """The credentials of one server. ``password_hash`` (a setting) overrides the stored one."""

    def __init__(self, store: Store, password_hash: str | None = None) -> None:
        self.store = store
        self._setting_hash = password_hash

    # -- password --------------------------------------------------------------------------------
    def password_hash(self) -> str | None:
        if self._setting_hash:
            return self._setting_hash
        return (self.store.get_state(STATE_KEY) or {}).get("password_hash")

    def set_password(self, password: str) -> None:
        self._write_state({"password_hash": hash_password(password)})

    def clear_password(self) -> bool:
        had = (self.store.get_state(STATE_KEY) or {}).get("password_hash") is not None
        self._write_state({})
        return had

    def _write_state(self, value: dict[str, Any]) -> None:
        """Write the auth state with a transaction whose first statement writes: a read first
        would make SQLite (WAL) fail at once, not wait, when the running server commits between
        the read and the write."""
        with self.store.session() as s:
            done = s.execute(
                update(SettingRow).where(SettingRow.key == STATE_KEY).values(value=value)
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                s.add(SettingRow(key=STATE_KEY, value=value))

    def verify_password(self, password: str) -> bool:
        stored = self.password_hash()
        if not stored:
            return False
        try:
            return _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    # -- tokens ----------------------------------------------------------------------------------
    def create_token(self, name: str) -> tuple[str, TokenInfo]:
        """A new token: the plaintext (shown once) and what is stored about it."""
        if not NAME_RE.match(name):
            raise AuthError("a token name is 1-64 letters, digits, '.', '_' or '-'")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        if any(t.name == name for t in self.tokens()):
            raise AuthError(f"an active token named {name!r} exists")
        row = ApiTokenRow(
            id=uuid.uuid4().hex,
            name=name,
            prefix=secret[: len(TOKEN_PREFIX) + 6],
            digest=digest(secret),
            created_at=datetime.now(UTC),
            revoked_at=None,
        )
        info = _info(row)
        with self.store.session() as s:  # a write-only transaction: see _write_state
            s.add(row)
        return secret, info

    def tokens(self, include_revoked: bool = False) -> list[TokenInfo]:
        with self.store.session() as s:
            query = select(ApiTokenRow).order_by(ApiTokenRow.created_at)
            if not include_revoked:
                query = query.where(ApiTokenRow.revoked_at.is_(None))
            return [_info(r) for r in s.scalars(query)]

    def revoke(self, ref: str) -> TokenInfo:
        """Revoke the active token whose id, name or prefix is ``ref``."""
        found = [t for t in self.tokens() if ref in (t.id, t.name, t.prefix)]
        if not found:
            raise AuthError(f"no active token with id, name or prefix {ref!r}")
        if len(found) > 1:
            raise AuthError(f"{ref!r} matches {len(found)} tokens; use the id")
        when = datetime.now(UTC)
        with self.store.session() as s:
            s.execute(
                update(ApiTokenRow)
                .where(ApiTokenRow.id == found[0].id, ApiTokenRow.revoked_at.is_(None))
                .values(revoked_at=when)
            )
        return replace(found[0], revoked_at=when)

    def token_valid(self, secret: str) -> bool:
        if not secret.startswith(TOKEN_PREFIX):
            return False
        with self.store.session() as s:
            row = s.scalar(select(ApiTokenRow).where(ApiTokenRow.digest == digest(secret)))
            return row is not None and row.revoked_at is None

    # -- state -----------------------------------------------------------------------------------
    def configured(self) -> bool:
        """True when a password is set or an active token exists."""
        if self.password_hash():
            return True
        with self.store.session() as s:
            active = select(ApiTokenRow.id).where(ApiTokenRow.revoked_at.is_(None)).limit(1)
            return s.scalar(active) is not None

    # -- sessions --------------------------------------------------------------------------------
    def new_session(self, ttl: timedelta = SESSION_TTL) -> tuple[str, datetime]:
        session_id = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self.store.session() as s:
            s.execute(delete(SessionRow).where(SessionRow.expires_at < now))
            s.add(SessionRow(digest=digest(session_id), created_at=now, expires_at=now + ttl))
        return session_id, now + ttl

    def session_valid(self, session_id: str) -> bool:
        with self.store.session() as s:
            row = s.get(SessionRow, digest(session_id))
            return row is not None and row.expires_at > datetime.now(UTC)

    def end_session(self, session_id: str) -> None:
        with self.store.session() as s:
            s.execute(delete(SessionRow).where(SessionRow.digest == digest(session_id)))

    def end_all_sessions(self) -> int:
        with self.store.session() as s:
            return int(s.execute(delete(SessionRow)).rowcount or 0)  # type: ignore[attr-defined]
