"""HTTP answers of market APIs turned into parsed JSON or one :class:`FeedError` (with the wait a
rate limit asks for). Shared by the live feeds; no vendor knowledge here."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

MAX_RETRY_AFTER = 3600.0  # never believe a server that asks us to wait more than an hour


class FeedError(Exception):
    """A request that brought no usable data. ``retry_after`` is the server's requested wait."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date), clamped to
    ``[0, MAX_RETRY_AFTER]``; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def error_message(body: Any) -> str | None:
    """The human message inside a JSON error body, for the usual shapes; None if none is found."""
    if not isinstance(body, dict):
        return None
    for key in ("status", "error"):
        inner = body.get(key)
        if isinstance(inner, dict):
            for name in ("error_message", "message", "description", "msg"):
                if isinstance(inner.get(name), str):
                    return str(inner[name])
        elif isinstance(inner, str):
            return inner
    for name in ("error_message", "message", "msg"):
        if isinstance(body.get(name), str):
            return str(body[name])
    return None


def json_or_error(response: httpx.Response) -> Any:
    """The parsed JSON of a 2xx answer; otherwise raise :class:`FeedError` describing it. Error
    bodies may be HTML (a CDN page) or empty: they are described, never trusted."""
    status = response.status_code
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if status >= 400:
        detail = error_message(body)
        if detail is None:
            kind = response.headers.get("content-type", "").split(";")[0] or "no content type"
            detail = f"non-JSON body ({kind})" if response.content else "empty body"
        retry = retry_after_seconds(response.headers.get("retry-after")) if status == 429 else None
        raise FeedError(f"HTTP {status}: {detail}", status=status, retry_after=retry)
    if body is None:
        raise FeedError(f"HTTP {status}: the answer is not JSON", status=status)
    return body


def transport_error(exc: httpx.HTTPError, timeout: float) -> FeedError:
    """A FeedError for a request that got no answer (timeout, refused connection ...)."""
    if isinstance(exc, httpx.TimeoutException):
        return FeedError(f"timeout: no answer within {timeout:g}s")
    return FeedError(f"request failed: {type(exc).__name__}: {exc}")
