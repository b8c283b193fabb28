"""gunicorn, as the Procfile runs it, serving the test database on a loopback port.

For the findings that are about the wire (chunked bodies, oversized bodies, request lines
and headers): Django's test client builds the WSGI request itself and never exercises
them. Tests using it need ``transactional_db`` so that gunicorn sees their rows.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _test_database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Gunicorn:
    def __init__(self, **env: str):
        self.port = _free_port()
        self.env = {**os.environ, "DATABASE_URL": _test_database_url(), "HOOKSTREAM_TESTING": "true", **env}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "hookstream.wsgi"]
        command += ["--bind", f"127.0.0.1:{self.port}", "--workers", "1", "--threads", "2"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("gunicorn did not start within 30 s")

    def __exit__(self, *exc_info) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def request(self, method: str, path: str, body=None, headers=None, *, chunked: bool = False):
        """(status, headers, body) of one request; ``chunked`` sends ``body`` with
        ``Transfer-Encoding: chunked`` (64 KiB chunks) and no ``Content-Length``."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            try:
                if chunked:
                    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
                    conn.request(method, path, body=iter(chunks), headers=headers or {}, encode_chunked=True)
                else:
                    conn.request(method, path, body=body, headers=headers or {})
            except (BrokenPipeError, ConnectionResetError):
                # The server answered (a 413) and closed before the whole body was sent, as it
                # may: read the answer it sent, as an HTTP client does.
                pass
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def raw(self, data: bytes) -> bytes:
        """Send ``data`` on a fresh connection; everything the server answers before closing."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(data)
            answer = b""
            while True:
                part = sock.recv(65536)
                if not part:
                    return answer
                answer += part
