"""One stream process's hub: reads the bus once and hands each message to its connections.

Every connection has a bounded send buffer. A client that does not read fast enough fills
its buffer and is dropped (close code 4008) — a slow client never grows the server's memory,
and never slows the frames of the others.
"""

import asyncio
import logging
from collections import defaultdict
from typing import Protocol

from django.conf import settings

from hookstream import stream_bus

logger = logging.getLogger(__name__)


class Connection(Protocol):
    organization_id: str

    def offer(self, channel: str, frame: dict) -> None: ...

    def matching_channel(self, channels: list[str]) -> str | None: ...


class Hub:
    def __init__(self) -> None:
        self._connections: dict[str, set[Connection]] = defaultdict(set)
        self._reader: asyncio.Task | None = None
        self.delivered = 0

    def add(self, connection: Connection) -> None:
        self._connections[connection.organization_id].add(connection)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read())

    def remove(self, connection: Connection) -> None:
        connections = self._connections.get(connection.organization_id)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._connections[connection.organization_id]

    def connection_count(self) -> int:
        return sum(len(connections) for connections in self._connections.values())

    def dispatch(self, message: dict) -> None:
        """Offer a bus message to the connections of its organization that subscribed to it."""
        for connection in list(self._connections.get(message.get("org"), ())):
            channel = connection.matching_channel(message.get("channels") or [])
            if channel is not None:
                connection.offer(channel, message["frame"])
                self.delivered += 1

    async def _read(self) -> None:
        async for message in stream_bus.messages():
            self.dispatch(message)


hub = Hub()


def buffer_size() -> int:
    return settings.HOOKSTREAM_STREAM_BUFFER_FRAMES
