"""The declarative ``Base`` every table of the store derives from, and its portable column types.

Tables live per feature under ``store/`` (``models.py`` for the core, ``*_tables.py`` beside it);
``store/models.py`` imports them all, so ``Base.metadata`` is the whole schema."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase


class ExactDecimal(TypeDecorator[Decimal]):
    """A Decimal stored as its exact text: SQLite has no exact numeric type, so NUMERIC would
    round-trip through float there. Text keeps every digit on every backend."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"refusing to store {value!r} as money")
        return str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return Decimal(value) if value is not None else None


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes, stored naive UTC (SQLite keeps no zone)."""

    impl = DateTime()
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        Decimal: ExactDecimal,
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
    }
