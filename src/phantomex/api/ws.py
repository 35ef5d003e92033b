"""WebSocket hub: a snapshot on connect, then every kernel event as a typed JSON message."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from phantomex.kernel.bus import Event
from phantomex.serialize import iso, jsonable
from phantomex.service import Queries

log = logging.getLogger(__name__)
router = APIRouter()

QUEUE_SIZE = 1000


class Hub:
    """Fans events out to connected clients; a client that falls too far behind is dropped.

    Each event is encoded to JSON once, whatever the number of clients."""

    def __init__(self) -> None:
        self.clients: set[asyncio.Queue[str | None]] = set()

    def on_event(self, event: Event) -> None:
        if not self.clients:
            return  # nobody to send it to: not even encoded
        message = json.dumps(
            {
                "type": event.type,
                "ts": iso(event.time),
                "wall_ts": iso(event.wall_time),
                "data": jsonable(event.data),
            },
            separators=(",", ":"),
            ensure_ascii=False,  # as Starlette's send_json
        )
        for queue in list(self.clients):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                self.clients.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait(None)  # tells the sender loop to close

    def snapshot(self, queries: Queries) -> dict[str, Any]:
        clock = queries.clock()
        return {
            "type": "snapshot",
            "ts": iso(clock) if clock else None,
            "data": queries.snapshot().model_dump(mode="json"),
        }


@router.websocket("/ws")
async def websocket(ws: WebSocket) -> None:
    hub: Hub = ws.app.state.hub
    queries: Queries = ws.app.state.service.queries
    await ws.accept()
    queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_SIZE)
    hub.clients.add(queue)
    try:
        await ws.send_json(hub.snapshot(queries))
        receiver = asyncio.create_task(_drain(ws))
        while True:
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                getter.cancel()
                break
            message = getter.result()
            if message is None:
                await ws.close(code=1013, reason="too slow")
                break
            await ws.send_text(message)
        receiver.cancel()
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.clients.discard(queue)


async def _drain(ws: WebSocket) -> None:
    """Read (and ignore) client messages until the client disconnects."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await ws.receive_text()
