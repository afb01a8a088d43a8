"""A real SMTP server (aiosmtpd) on loopback, for the email channel's tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Mailbox:
    """What the server received, and how it should answer the next DATA."""

    received: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)
    answer: str = "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.answer.startswith("250"):
            self.envelopes.append(envelope)
            self.received.append(
                message_from_bytes(envelope.original_content, policy=policy.default)  # type: ignore[arg-type]
            )
        return self.answer


@dataclass
class SmtpServer:
    host: str
    port: int
    mailbox: Mailbox
    options: dict[str, Any] = field(default_factory=dict)
    controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def stop(self) -> None:
        assert self.controller is not None
        self.controller.stop()
        self.controller = None

    def start(self) -> None:
        # A stopped Controller cannot start again: a new one on the same port
        # is the same server coming back.
        self.controller = Controller(
            self.mailbox, hostname=self.host, port=self.port, **self.options
        )
        self.controller.start()


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"dunning",
        b"s3cret:pass",
    )
    # handled=False: aiosmtpd itself answers 535 when the login fails.
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer("127.0.0.1", free_port(), Mailbox())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server_with_auth() -> Iterator[SmtpServer]:
    # Loopback only, so AUTH without TLS is acceptable in this test server.
    options = {"authenticator": _authenticator, "auth_require_tls": False, "auth_required": True}
    server = SmtpServer("127.0.0.1", free_port(), Mailbox(), options)
    server.start()
    yield server
    server.stop()
