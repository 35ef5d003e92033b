"""``GET /api/system/database``: the database ``phantomex db backup`` copies."""

from __future__ import annotations

from pydantic import BaseModel, Field

from phantomex.api.schemas.wire import RESPONSE


class DatabaseInfo(BaseModel):
    model_config = RESPONSE

    backend: str = Field(description="sqlite, postgresql, …")
    path: str | None = Field(description="SQLite: the file on the server's machine.")
    url: str | None = Field(description="Other databases: the URL without the password.")
