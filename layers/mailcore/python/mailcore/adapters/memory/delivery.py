"""The NextHopResolver and SmtpSender ports in memory, for tests of delivery without DNS or
a network: every domain's mail goes to one named host, and each recipient gets the reply
scripted for it (250 when none was)."""

from __future__ import annotations

from mailcore.ports import NextHop, RecipientReply


class InMemoryNextHops:
    def __init__(self, port: int = 25) -> None:
        self._port = port

    def resolve(self, domain: str) -> list[NextHop]:
        return [NextHop("mx." + domain, self._port)]


class InMemorySmtpSender:
    def __init__(self, replies: dict[str, tuple[int, str]] | None = None) -> None:
        self.replies = dict(replies or {})
        self.sent: list[tuple[str, tuple[str, ...], bytes]] = []  # mail from, recipients, raw

    def send(self, hops: list[NextHop], mail_from: str, recipients: tuple[str, ...],
             raw: bytes) -> list[RecipientReply]:
        self.sent.append((mail_from, recipients, raw))
        return [RecipientReply(recipient, *self.replies.get(recipient, (250, "2.0.0 Ok")),
                               hops[0].host)
                for recipient in recipients]
