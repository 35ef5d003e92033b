"""Unknown query parameters are refused (422 naming them) on every API route, so a misspelt
filter (``/api/trades?agent=…``) is an error instead of a silently unfiltered answer."""

from __future__ import annotations

from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection


def declared_query(dependant: Dependant) -> set[str]:
    """The query parameters a route's ``dependant`` takes (its own and its dependencies')."""
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= declared_query(sub)
    return names


def refuse_unknown_query(connection: HTTPConnection) -> None:
    """A dependency of the whole app: answers 422 when the query has a parameter the matched
    route does not declare (routes outside the API schema, and WebSockets, are left alone)."""
    route = connection.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return
    known = declared_query(route.dependant)
    unknown = sorted({name for name in connection.query_params if name not in known})
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": f"unknown query parameter (this endpoint takes: {takes})",
                }
                for name in unknown
            ]
        )
