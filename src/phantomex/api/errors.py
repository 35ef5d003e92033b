"""One error body for every 4xx: ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from phantomex.brains.registry import UnknownEndpointError, UnknownStrategyError
from phantomex.kernel.runtime import KernelError, NotFound


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, **extra}}


def _field_of(loc: Any) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def _message(error: Any) -> str:
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def _validation_response(errors: list[Any], prefix: str | None = None) -> JSONResponse:
    first = errors[0] if errors else {"loc": (), "msg": "invalid input"}
    field = _field_of(first.get("loc", ()))
    if prefix:
        field = f"{prefix}.{field}" if field else prefix
    details = [{"field": _field_of(e.get("loc", ())), "message": _message(e)} for e in errors]
    msg = _message(first)
    message = f"{field}: {msg}" if field else msg
    return JSONResponse(
        status_code=422,
        content=error_body("validation_error", message, field, details=details),
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(list(exc.errors()))

    @app.exception_handler(ValidationError)
    async def _pydantic(_: Request, exc: ValidationError) -> JSONResponse:
        return _validation_response(list(exc.errors()), prefix="params")

    @app.exception_handler(UnknownStrategyError)
    async def _strategy(_: Request, exc: UnknownStrategyError) -> JSONResponse:
        return JSONResponse(
            status_code=422, content=error_body("unknown_strategy", str(exc), "brain")
        )

    @app.exception_handler(UnknownEndpointError)
    async def _endpoint(_: Request, exc: UnknownEndpointError) -> JSONResponse:
        return JSONResponse(
            status_code=422, content=error_body("unknown_endpoint", str(exc), "params.endpoint")
        )

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content=error_body("not_found", str(exc), exc.field))

    @app.exception_handler(KernelError)
    async def _kernel(_: Request, exc: KernelError) -> JSONResponse:
        status = {"conflict": 409, "not_found": 404}.get(exc.code, 422)
        return JSONResponse(status_code=status, content=error_body(exc.code, str(exc), exc.field))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else "http_error"
        return JSONResponse(status_code=exc.status_code, content=error_body(code, str(exc.detail)))
