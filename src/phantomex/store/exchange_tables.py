"""Tables of the exchange feature: encrypted venue credentials (``broker/credentials.py``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from phantomex.store.base import Base


class ExchangeCredentialRow(Base):
    """Encrypted API credentials of one venue (``binance-testnet``)."""

    __tablename__ = "exchange_credentials"

    venue: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_key_encrypted: Mapped[str] = mapped_column(Text)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]
