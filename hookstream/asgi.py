"""The ASGI process: the live stream at ``/v1/ws`` (Procfile ``stream``).

The API and the console stay on the WSGI process (gunicorn); this process serves only the
WebSocket stream, so that long-lived connections never hold a WSGI worker.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookstream.settings")
django_http = get_asgi_application()  # sets Django up before the consumers are imported

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from stream.consumers import StreamConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_http,
        "websocket": AuthMiddlewareStack(URLRouter([re_path(r"^v1/ws/?$", StreamConsumer.as_asgi())])),
    }
)
