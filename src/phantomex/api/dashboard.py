"""The web dashboard: serves the Svelte build (``frontend/`` → ``api/static/``) at ``/``.

Only ``/`` (``index.html``) and ``/assets/*`` (hashed, immutable files) are served, so the API
(``/api``, ``/ws``, ``/docs``, ``/health``) is never shadowed. When the dashboard has not been
built, ``/`` answers with a short page saying how to build it; the API works either way.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent / "static"

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>PhantomEx: dashboard not built</title>
<style>
body{font-family:system-ui,sans-serif;background:#0b0f17;color:#e6ebf5;max-width:40rem;
margin:3rem auto;padding:0 1rem;line-height:1.5}
code{background:#182033;padding:.1rem .35rem;border-radius:4px}a{color:#7c9cff}
</style></head>
<body>
<h1>PhantomEx</h1>
<p>The server and its API are running, but the web dashboard has not been built.</p>
<p>Build it with Node.js 20 or newer: <code>make dashboard</code>
(or <code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code>), then reload this page.
<code>make run</code> builds it for you when <code>npm</code> is installed.</p>
<p>Meanwhile: the interactive API is at <a href="/docs">/docs</a>, the health check at
<a href="/health">/health</a>, and the <code>phantomex</code> CLI works as usual.</p>
</body></html>
"""

INDEX_HEADERS = {"Cache-Control": "no-cache"}


class _Assets(StaticFiles):
    """Hashed build files: cache them for a year (a new build has new names). A missing
    folder (dashboard not built) answers 404 instead of failing."""

    async def check_config(self) -> None:
        return None

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def mount_dashboard(app: FastAPI, directory: Path | None = None) -> None:
    """Serve the dashboard build in ``directory`` (default: ``phantomex/api/static``) at ``/``.

    The folder is looked at on every request, so building while the server runs works."""
    root = Path(directory) if directory is not None else STATIC_DIR

    def index() -> Response:
        page = root / "index.html"
        if page.is_file():
            return FileResponse(page, media_type="text/html", headers=INDEX_HEADERS)
        return HTMLResponse(NOT_BUILT, headers=INDEX_HEADERS)

    app.add_api_route("/", index, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route("/index.html", index, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount("/assets", _Assets(directory=root / "assets", check_dir=False), name="assets")
