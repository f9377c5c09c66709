"""What the junk filter's end-to-end tests (issue 29) do on a running stack: the DNS its
senders publish, mail sent over SMTP from a chosen loopback address, a folder read over the
API until a message shows up in it."""

from __future__ import annotations

import email
import smtplib
from typing import Any

from mailpipe.local.launcher import StackProcess
from tests.dns_support import Zone
from tests.e2e.api_client import ApiClient, wait_until

CAROL, DAVE = "carol@hamburger.edu", "dave@hamburger.edu"
CORRESPONDENT = "alice@waffles.be"  # proves itself: SPF covers loopback, DMARC passes
BLOCKLIST = "bl.test"  # lists 127.0.0.2; refuses the query for 127.0.0.3 (127.255.255.254)


def dns_zone() -> Zone:
    return Zone(txt={"waffles.be": ["v=spf1 ip4:127.0.0.0/8 -all"],
                     "_dmarc.waffles.be": ["v=DMARC1; p=none"]},
                a={f"2.0.0.127.{BLOCKLIST}": ["127.0.0.2"],
                   f"3.0.0.127.{BLOCKLIST}": ["127.255.255.254"]})


def send(stack: StackProcess, raw: bytes, recipients: list[str],
         source: str = "127.0.0.1") -> None:
    """Over the MX port, from `source`, the envelope sender the message's From."""
    send_each(stack, [raw], recipients, source)


def send_each(stack: StackProcess, messages: list[bytes], recipients: list[str],
              source: str = "127.0.0.1") -> None:
    """One SMTP session, a transaction for each message."""
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, source_address=(source, 0),
                      local_hostname="mail.example.net", timeout=30) as client:
        for raw in messages:
            mail_from = email.message_from_bytes(raw)["From"].strip("<>")
            client.sendmail(mail_from, recipients, raw)


def subject_of(raw: bytes) -> str:
    return str(email.message_from_bytes(raw)["Subject"])


def arrived(api: ApiClient, subject: str, timeout: float = 30) -> tuple[str, dict[str, Any]]:
    """The folder the message with this subject was filed in, and its detail."""
    def found() -> tuple[str, dict[str, Any]] | None:
        for folder in ("Inbox", "Junk"):
            for listed in api.messages(folder):
                if listed["subject"] == subject:
                    detail = api.get(f"/messages/{listed['id']}")
                    assert detail.status_code == 200, detail.text
                    return folder, detail.json()
        return None

    filed = wait_until(found, timeout, interval=0.3, what=f"{subject!r} filed")
    assert filed is not None  # wait_until returns only a truthy value
    return filed
