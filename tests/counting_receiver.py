"""A remote mail server for delivery tests: aiosmtpd on loopback that answers RCPT as
scripted per address (250 otherwise), keeps what it accepts, and counts connections, so a
test can tell that no connection was made at all."""

from __future__ import annotations

import asyncio
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from mailpipe.local.launcher import free_port


class _CountingSMTP(SMTP):
    def __init__(self, handler: ScriptedReceiver, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._receiver = handler

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._receiver.connections += 1
        super().connection_made(transport)


class ScriptedReceiver:
    def __init__(self, replies: dict[str, str]) -> None:
        self.replies = replies  # address -> the RCPT reply, e.g. "550 5.1.1 User unknown"
        self.connections = 0
        self.port = 0
        self.accepted: list[tuple[str, ...]] = []  # each message's accepted recipients

    async def handle_RCPT(self, server: SMTP, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        reply = self.replies.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        self.accepted.append(tuple(envelope.rcpt_tos))
        return "250 2.0.0 Ok: queued"


class ReceiverController(Controller):
    def factory(self) -> SMTP:
        assert isinstance(self.handler, ScriptedReceiver)
        return _CountingSMTP(self.handler, hostname="sink.test")


def start_receiver(replies: dict[str, str]) -> tuple[ReceiverController, ScriptedReceiver]:
    receiver = ScriptedReceiver(replies)
    controller = ReceiverController(receiver, hostname="127.0.0.1", port=free_port())
    controller.start()
    receiver.port = controller.port
    receiver.connections = 0  # start() connects once itself, to see the server is up
    return controller, receiver
