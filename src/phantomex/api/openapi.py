"""An honest OpenAPI schema: every API operation documents the 4xx answers it can give, each with
the uniform error body ``{"error": {code, message, field}}`` (FastAPI's default 422 schema,
``{"detail": [...]}``, is not what the API returns)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from phantomex.api.auth import OPEN_PATHS
from phantomex.api.schemas.errors import ErrorBody

REF = "#/components/schemas/ErrorBody"


MALFORMED = "The body is not JSON (or not UTF-8)."
TOO_LARGE = "The body is larger than the server's limit (setting max_body_bytes)."
ERRORS = {
    "401": "Authentication required (auth is on).",
    "403": "Missing or wrong CSRF token, or a WebSocket from another origin.",
    "404": "No such agent, decision, order, endpoint or symbol.",
    "409": "Conflicts with the current state (exists, in use, unreachable LLM server).",
    "422": "Invalid input; `field` names it.",
}


def _document(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(
        ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")["$defs"]
    )
    components["ErrorBody"] = ErrorBody.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    components["ErrorBody"].pop("$defs", None)
    error = {"application/json": {"schema": {"$ref": REF}}}
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses["400"] = {"description": MALFORMED, "content": error}
                responses["413"] = {"description": TOO_LARGE, "content": error}
            for status, description in ERRORS.items():
                if status in ("401", "403") and path in OPEN_PATHS:
                    continue
                current = responses.get(status, {})
                responses[status] = {
                    "description": current.get("description", description),
                    "content": error,
                }
            for status, answer in responses.items():  # and those the route declares itself
                if status.startswith("4"):
                    answer["content"] = error
    if "#/components/schemas/HTTPValidationError" not in json.dumps(schema["paths"]):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
    return schema


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` with one that documents the uniform 4xx answers."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = _document(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
