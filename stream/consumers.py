"""``/v1/ws``: the live stream of events, deliveries and issues (spec §8).

Authentication: ``?token=<api key>`` or the web UI's session cookie (then the Origin must be
this site's, so that another site's page cannot open the stream with a visitor's cookie).
The server says ``{"type":"welcome","org_id":…}``; the client sends
``{"type":"subscribe","channel":…}`` / ``{"type":"unsubscribe","channel":…}``. Channels:
``events``, ``events:<source_id>``, ``deliveries``, ``deliveries:<destination_id>``,
``issues``, and the ``channel_name`` of WebSocket destinations. A connection only ever sees
its own organization's frames: the hub routes by the organization the frame was published in.
"""

import asyncio
import re
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http.request import split_domain_port

from hookstream.models import API_KEY_PREFIX, APIKey, Membership, hash_key
from stream.hub import buffer_size, hub

CHANNEL_RE = re.compile(r"^(events|deliveries)(:[A-Za-z0-9_]{1,64})?$|^issues$|^[a-z0-9._-]{1,100}$")
MAX_SUBSCRIPTIONS = 100
# Close codes: 4401 not authenticated, 4403 cross-site cookie use, 4008 too slow.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_TOO_SLOW = 4008


@database_sync_to_async
def _organization_for_token(raw: str):
    if not raw.startswith(API_KEY_PREFIX):
        return None
    key = APIKey.objects.select_related("organization").filter(key_hash=hash_key(raw)).first()
    if key is None or key.revoked:
        return None
    return key.organization


@database_sync_to_async
def _organization_for_session(user, session):
    if user is None or not user.is_authenticated:
        return None
    memberships = Membership.objects.select_related("organization").filter(user=user)
    selected = session.get("organization_id") if session is not None else None
    membership = memberships.filter(organization_id=selected).first() if selected else None
    membership = membership or memberships.order_by("created_at", "id").first()
    return membership.organization if membership else None


def _same_site_origin(headers: dict[bytes, bytes]) -> bool:
    """A browser's Origin names this site (its host, on any port: the stream has a port of its
    own) or a trusted origin; a non-browser client sends no Origin and no ambient cookie."""
    origin = headers.get(b"origin")
    if origin is None:
        return True
    origin_text = origin.decode("latin-1")
    if origin_text in settings.CSRF_TRUSTED_ORIGINS:
        return True
    origin_host, _ = split_domain_port(urlsplit(origin_text).netloc)
    request_host, _ = split_domain_port(headers.get(b"host", b"").decode("latin-1"))
    return bool(origin_host) and origin_host == request_host


class StreamConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.subscriptions: set[str] = set()
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=buffer_size())
        self.sender: asyncio.Task | None = None
        self.too_slow = False
        organization = await self._authenticate()
        if organization is None:
            return  # refused in _authenticate
        self.organization_id = organization.pk
        await self.accept()
        await self.send_json({"type": "welcome", "org_id": organization.pk})
        self.sender = asyncio.get_running_loop().create_task(self._send_loop())
        hub.add(self)

    async def _authenticate(self):
        token = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        if token:
            organization = await _organization_for_token(token)
        else:
            if not _same_site_origin(dict(self.scope.get("headers", []))):
                await self.close(code=CLOSE_FORBIDDEN_ORIGIN)
                return None
            organization = await _organization_for_session(self.scope.get("user"), self.scope.get("session"))
        if organization is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
        return organization

    async def disconnect(self, code) -> None:
        hub.remove(self)
        if self.sender is not None:
            self.sender.cancel()

    async def receive_json(self, content, **kwargs) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        channel = content.get("channel") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
            return
        if kind not in ("subscribe", "unsubscribe"):
            await self.send_json({"type": "error", "error": 'Send {"type": "subscribe", "channel": …}.'})
            return
        if not isinstance(channel, str) or not CHANNEL_RE.match(channel):
            await self.send_json({"type": "error", "error": f"Unknown channel {channel!r}.", "channel": channel})
            return
        if kind == "unsubscribe":
            self.subscriptions.discard(channel)
            await self.send_json({"type": "unsubscribed", "channel": channel})
            return
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS and channel not in self.subscriptions:
            await self.send_json({"type": "error", "error": f"At most {MAX_SUBSCRIPTIONS} channels per connection."})
            return
        self.subscriptions.add(channel)
        await self.send_json({"type": "subscribed", "channel": channel})

    async def decode_json(self, text_data):
        try:
            return await super().decode_json(text_data)
        except ValueError:
            return None

    # -- called by the hub -------------------------------------------------------------------
    def matching_channel(self, channels: list[str]) -> str | None:
        for channel in channels:
            if channel in self.subscriptions:
                return channel
        return None

    def offer(self, channel: str, frame: dict) -> None:
        if self.too_slow:
            return
        try:
            self.queue.put_nowait({**frame, "channel": channel})
        except asyncio.QueueFull:
            # The client does not keep up: drop it rather than buffer without bound.
            self.too_slow = True
            hub.remove(self)
            asyncio.get_running_loop().create_task(self._drop())

    async def _drop(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
        try:
            await self.close(code=CLOSE_TOO_SLOW)
        except Exception:  # noqa: BLE001 - the client may be gone already; it is dropped either way
            pass

    async def _send_loop(self) -> None:
        while True:
            frame = await self.queue.get()
            await self.send_json(frame)
