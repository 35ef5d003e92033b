"""The one error body of every 4xx answer: ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    field: str | None = Field(description="The input, as a dotted path.")
    message: str


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable kind: validation_error, not_found, …")
    message: str
    field: str | None = Field(None, description="The input the error is about, if one.")
    details: list[FieldError] | None = Field(None, description="Every validation error.")


class ErrorBody(BaseModel):
    error: ErrorDetail
