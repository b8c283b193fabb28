"""gunicorn settings shared by the Procfile, ``./dev up`` and the benchmarks (``-c gunicorn.conf.py``).

The request-line and header limits are gunicorn's defaults, written out so that they are a
decision rather than an accident; each can be changed through the environment. Requests
beyond them never reach Django: gunicorn answers them itself, and the worker class below
makes that answer the API's JSON error body instead of gunicorn's HTML page.

Bind address, worker and thread counts stay on the command line (see the Procfile).
"""

import json
import os

from gunicorn import util
from gunicorn.http.errors import LimitRequestHeaders, LimitRequestLine
from gunicorn.workers.gthread import ThreadWorker


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


# Longest request line (method, path with query string, version): longer answers 414.
limit_request_line = _env_int("GUNICORN_LIMIT_REQUEST_LINE", 4094)
# Most header fields in one request, and the longest one: beyond either answers 431.
limit_request_fields = _env_int("GUNICORN_LIMIT_REQUEST_FIELDS", 100)
limit_request_field_size = _env_int("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", 8190)


class JsonErrorThreadWorker(ThreadWorker):
    """gunicorn's threaded worker, answering 414 and 431 with ``{"error", "status", "request_id"}``.

    Other malformed requests keep gunicorn's own (HTML) answer.
    """

    def handle_error(self, req, client, addr, exc):
        if isinstance(exc, LimitRequestLine):
            status, reason = 414, "URI Too Long"
        elif isinstance(exc, LimitRequestHeaders):
            status, reason = 431, "Request Header Fields Too Large"
        else:
            return super().handle_error(req, client, addr, exc)
        self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        body = json.dumps({"error": f"{reason}: {exc}", "status": status, "request_id": None}).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        try:
            util.write_nonblock(client, head.encode("latin-1") + body)
        except Exception:
            self.log.debug("Failed to send error message.")
        return None


worker_class = JsonErrorThreadWorker
