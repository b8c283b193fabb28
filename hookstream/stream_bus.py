"""The live stream's bus: any process publishes frames, the stream processes read them.

``publish`` is called by web and worker processes (after their transaction commits); each
stream process (``stream/``, the ASGI server behind ``/v1/ws``) reads every message and hands
it to its own connections of that organization. Two backends, chosen by the settings:

- Redis pub/sub when ``REDIS_URL`` is set (production; any number of stream processes);
- the database otherwise (the embedded setup: SQLite, no Redis): a ``StreamFrame`` row per
  message, polled by id. Old rows are deleted as new ones are written.

Publishing never fails its caller: the stream is a view of what happened, and a bus outage
must not cost an ingest or a delivery. A message published while no stream process runs is
simply not seen by anyone, as with any live view.
"""

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator
from datetime import timedelta

import redis
import redis.asyncio
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hookstream.models import StreamFrame
from hookstream.redis_client import redis_client

logger = logging.getLogger(__name__)

REDIS_CHANNEL = "hookstream:stream"
# Database backend: how long a frame row is kept, how often a publish deletes older ones,
# and how often a stream process looks for new ones.
FRAME_ROW_TTL = timedelta(minutes=5)
PURGE_EVERY = 500
POLL_SECONDS = 0.2


def uses_redis() -> bool:
    return bool(settings.REDIS_URL)


def encode(*, organization_id: str, channels: list[str], frame: dict) -> str:
    return json.dumps({"org": organization_id, "channels": channels, "frame": frame}, default=str)


def publish(*, organization_id: str, channels: list[str], frame: dict, strict: bool = False) -> None:
    """Hand ``frame`` to subscribers of any of ``channels`` in the organization.

    A bus failure is logged, not raised — unless ``strict``: a WebSocket channel destination
    must know whether its frame was handed over (it retries otherwise)."""
    message = encode(organization_id=organization_id, channels=channels, frame=frame)
    try:
        if uses_redis():
            redis_client().publish(REDIS_CHANNEL, message)
        else:
            StreamFrame.objects.create(message=message)
            if random.randrange(PURGE_EVERY) == 0:
                StreamFrame.objects.filter(created_at__lt=timezone.now() - FRAME_ROW_TTL).delete()
    except Exception as exc:  # noqa: BLE001 - the stream must never fail an ingest or a delivery
        if strict:
            raise
        logger.warning("live stream publish failed: %s", exc)


def publish_on_commit(*, organization_id: str, channels: list[str], frame: dict) -> None:
    transaction.on_commit(lambda: publish(organization_id=organization_id, channels=channels, frame=frame))


async def messages() -> AsyncIterator[dict]:
    """Every message published from now on, decoded; reconnects by itself after an outage."""
    source = _redis_messages if uses_redis() else _database_messages
    while True:
        try:
            async for message in source():
                try:
                    yield json.loads(message)
                except ValueError:
                    logger.warning("live stream: undecodable message dropped")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - keep reading after a Redis or database outage
            logger.warning("live stream bus read failed, retrying: %s", exc)
            await asyncio.sleep(1)


async def _redis_messages() -> AsyncIterator[str]:
    client = redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(REDIS_CHANNEL)
        while True:
            message = await pubsub.get_message(timeout=5.0)
            if message is not None:
                yield message["data"].decode() if isinstance(message["data"], bytes) else message["data"]
    finally:
        await pubsub.aclose()
        await client.aclose()


def _last_frame_id() -> int:
    last = StreamFrame.objects.order_by("-id").values_list("id", flat=True).first()
    return last or 0


def _frames_after(frame_id: int) -> list[tuple[int, str]]:
    return list(StreamFrame.objects.filter(id__gt=frame_id).order_by("id").values_list("id", "message")[:1000])


async def _database_messages() -> AsyncIterator[str]:
    last = await sync_to_async(_last_frame_id, thread_sensitive=True)()
    while True:
        rows = await sync_to_async(_frames_after, thread_sensitive=True)(last)
        for frame_id, message in rows:
            last = frame_id
            yield message
        if not rows:
            await asyncio.sleep(POLL_SECONDS)
