"""Exchange API keys at rest: one row per venue, key and secret encrypted with the SecretBox.

Plaintext keys exist only in memory, in the client that signs requests; they are never stored,
returned by the API or logged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from phantomex.secrets import SecretBox
from phantomex.store.exchange_tables import ExchangeCredentialRow

if TYPE_CHECKING:
    from phantomex.store.repo import Store


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str
    secret: str

    def __repr__(self) -> str:  # never print a key by accident
        return "Credentials(api_key=***, secret=***)"


def save_credentials(store: Store, box: SecretBox, venue: str, creds: Credentials) -> None:
    if not creds.api_key.strip() or not creds.secret.strip():
        raise ValueError("both an API key and a secret are needed")
    with store.session() as s:
        row = s.get(ExchangeCredentialRow, venue) or ExchangeCredentialRow(venue=venue)
        row.api_key_encrypted = box.encrypt(creds.api_key.strip())
        row.secret_encrypted = box.encrypt(creds.secret.strip())
        row.updated_at = datetime.now(UTC)
        s.add(row)


def load_credentials(store: Store, box: SecretBox, venue: str) -> Credentials | None:
    with store.session() as s:
        row = s.get(ExchangeCredentialRow, venue)
        if row is None:
            return None
        return Credentials(box.decrypt(row.api_key_encrypted), box.decrypt(row.secret_encrypted))


def venues_with_keys(store: Store) -> list[str]:
    with store.session() as s:
        return list(s.scalars(select(ExchangeCredentialRow.venue).order_by("venue")))


def delete_credentials(store: Store, venue: str) -> bool:
    with store.session() as s:
        return bool(
            s.execute(
                delete(ExchangeCredentialRow).where(ExchangeCredentialRow.venue == venue)
            ).rowcount  # type: ignore[attr-defined]
        )
