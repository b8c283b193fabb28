"""A real SMTP server on loopback for tests (aiosmtpd, in a thread), keeping what it gets."""

from __future__ import annotations

import socket
import threading
import time
from email import message_from_bytes

from aiosmtpd.controller import Controller


class _Handler:
    def __init__(self, server: SMTPServer):
        self.server = server

    async def handle_DATA(self, smtp_server, session, envelope):
        with self.server.cond:
            self.server.messages.append(
                (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
            )
            self.server.cond.notify_all()
        return "250 Message accepted for delivery"


class SMTPServer:
    def __init__(self):
        with socket.socket() as sock:  # a free loopback port
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.messages: list = []
        self.cond = threading.Condition()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def wait_for(self, count: int, timeout: float = 15.0) -> list:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} messages, got {len(self.messages)}")
                self.cond.wait(left)
            return list(self.messages)

    def close(self) -> None:
        self.controller.stop()
