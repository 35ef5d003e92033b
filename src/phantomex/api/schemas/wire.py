"""Field types that render values exactly as :mod:`phantomex.serialize` does: money and
quantities as plain decimal text (``format(d, "f")``, never an exponent), times as ISO 8601
in UTC with a ``Z``. A handler may hand over the values or their text; the output is the same."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi.responses import JSONResponse
from pydantic import ConfigDict, PlainSerializer, WithJsonSchema

from phantomex.serialize import iso

#: A decimal as text: ``"1234.5"``, ``"-0.00012"`` (exact; parse it as a decimal, not a float).
DecimalText = Annotated[
    Decimal,
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^-?\d+(\.\d+)?$",
            "description": "An exact decimal as text.",
            "examples": ["1234.50"],
        }
    ),
]
#: A time: ISO 8601 in UTC with a ``Z`` (``2026-01-31T12:00:00Z``).
Timestamp = Annotated[
    datetime,
    PlainSerializer(iso, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-01-31T12:00:00Z"]}),
]
#: A response model: it documents what the handler returns and renders it unchanged.
RESPONSE = ConfigDict(extra="forbid")
#: The response class of these routes: bodies are rendered by ``json.dumps`` as they were before
#: the models (FastAPI's ``dump_json`` fast path would spell some floats differently: ``1e-5``
#: where ``json.dumps`` writes ``1e-05``).
RENDER = JSONResponse
