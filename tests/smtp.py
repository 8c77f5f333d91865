"""A real SMTP server for tests: aiosmtpd on loopback, collecting what it accepts.

It can be told to answer the next messages with a temporary (4xx) or permanent (5xx)
failure, or to stop and start, so delivery code meets real server behaviour.
"""
from __future__ import annotations

import threading
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller


class CollectingHandler:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.replies: list[str] = []  # queued replies for the next DATA commands
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
            message = BytesParser(policy=policy.default).parsebytes(envelope.original_content or envelope.content)
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


class SMTPServer:
    def __init__(self, port: int, host: str = "127.0.0.1", **tls: Any) -> None:
        """`tls`: aiosmtpd's `tls_context` (STARTTLS offered) or `ssl_context` (TLS from the
        first byte)."""
        self.host = host
        self.port = port
        self.tls = tls
        self.handler = CollectingHandler()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname=self.host, port=self.port, **self.tls)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    def reply_next_with(self, *replies: str) -> None:
        """Answer the next DATA commands with these replies, e.g. "451 4.3.0 Try later"."""
        with self.handler.lock:
            self.handler.replies.extend(replies)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return self.messages
            time.sleep(0.05)
        raise AssertionError(f"expected {count} messages, got {len(self.messages)}")
