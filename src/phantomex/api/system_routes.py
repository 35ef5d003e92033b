"""``GET /api/system/database``: which database this server writes, so that ``phantomex db
backup`` copies the running server's database and not one it finds in its own folder."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.engine import make_url

from phantomex.api.schemas.backup import DatabaseInfo
from phantomex.api.schemas.wire import RENDER
from phantomex.store.backup import sqlite_file

router = APIRouter(tags=["system"], default_response_class=RENDER)


@router.get("/api/system/database", response_model=DatabaseInfo)
def database(request: Request) -> dict[str, Any]:
    """The database's backend and, for SQLite, its file (an absolute path on the server's
    machine); for other databases its URL without the password."""
    url = request.app.state.settings.database_url
    path = sqlite_file(url)
    if path is not None:
        return {"backend": "sqlite", "path": str(path.resolve()), "url": None}
    parsed = make_url(url)
    return {
        "backend": parsed.get_backend_name(),
        "path": None,
        "url": parsed.render_as_string(hide_password=True),
    }
