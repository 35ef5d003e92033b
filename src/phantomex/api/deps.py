"""What route handlers depend on: the service layer's commands and queries, and the query
parameters several routers share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from phantomex.domain.inputs import Ident, Name, QueryInt
from phantomex.service import Commands, Queries, Service


def service(request: Request) -> Service:
    return request.app.state.service


def commands(request: Request) -> Commands:
    return service(request).commands


def queries(request: Request) -> Queries:
    return service(request).queries


Cmd = Annotated[Commands, Depends(commands)]
Qry = Annotated[Queries, Depends(queries)]
AgentIdQ = Annotated[Ident | None, Query(description="Only this agent.")]
SymbolQ = Annotated[Name | None, Query(max_length=32, description="Only this symbol.")]
LimitQ = Annotated[QueryInt, Query(ge=1, le=1000)]
OffsetQ = Annotated[QueryInt, Query(description="Rows to skip.")]
