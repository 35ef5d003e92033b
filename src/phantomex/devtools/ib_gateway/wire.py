"""The TWS socket API's framing: a 4-byte big-endian length, then NUL-terminated text fields.

A session opens with ``API\\0`` and a framed ``v<min>..<max>`` version range from the client;
the server answers with its version and connection time (two fields), then the client sends
``startApi``. Every later message is a list of fields whose first is the message id."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

__all__ = [
    "HANDSHAKE_PREFIX",
    "ProtocolError",
    "encode",
    "field",
    "parse_version_range",
    "read_frame",
    "read_handshake",
    "tws_time",
]

HANDSHAKE_PREFIX = b"API\0"


class ProtocolError(ValueError):
    """The peer broke the framing or the handshake."""


def field(value: object) -> str:
    """One field as IB writes it: None empty, bools ``1``/``0``, Decimals in plain notation."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def encode(fields: Iterable[object]) -> bytes:
    """A framed message of ``fields``."""
    body = "".join(field(f) + "\0" for f in fields).encode()
    return struct.pack(">I", len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> list[str]:
    """The fields of the next framed message (IncompleteReadError at the end of the stream)."""
    size = struct.unpack(">I", await reader.readexactly(4))[0]
    if size > 16 * 1024 * 1024:
        raise ProtocolError(f"message of {size} bytes")
    fields = (await reader.readexactly(size)).decode(errors="backslashreplace").split("\0")
    fields.pop()  # the text after the last NUL is empty
    return fields


async def read_handshake(reader: asyncio.StreamReader) -> tuple[int, int]:
    """The client's ``API\\0`` prefix and version range."""
    if await reader.readexactly(4) != HANDSHAKE_PREFIX:
        raise ProtocolError("the session did not start with API\\0")
    size = struct.unpack(">I", await reader.readexactly(4))[0]
    return parse_version_range((await reader.readexactly(size)).decode())


def parse_version_range(text: str) -> tuple[int, int]:
    """``v157..178`` (optionally followed by connect options) → (157, 178)."""
    head = text.split(" ", 1)[0]
    if not head.startswith("v") or ".." not in head:
        raise ProtocolError(f"bad version range {text!r}")
    low, high = head[1:].split("..", 1)
    return int(low), int(high)


def tws_time(at: datetime) -> str:
    """A time as TWS writes it in the handshake and executions (``20261206 14:30:00 UTC``)."""
    return at.strftime("%Y%m%d %H:%M:%S") + " UTC"
