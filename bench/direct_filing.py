"""Filling a large folder fast for a benchmark: straight through the mailbox port.

Each message gets what filing gives it (its own S3 object, raw reference, UID and change
log entry, filed in batches as the filing function files them) and, given `views`, its
IMAP view as filing keeps it, without the SMTP edge and
the queue, which would take the local runtime ten minutes for 10,000 messages. Without
views, the first FETCH that wants one makes it (the lazy path, as for messages filed before
views existed). Imported by the benchmarks that need a large Inbox.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

# Messages filed in one call, as the filing function files a batch of arrivals (the
# mailbox port splits them into transactions) and keeps their views in one request.
BATCH = 25


def file_directly(adapters: Any, account: str, count: int,
                  message: Callable[[int], bytes], views: Any = None,
                  folder: str | None = None) -> list[str]:
    """File `count` messages into `folder` (a folder id; the Inbox by default); their
    message ids, in order."""
    from mailcore.domain.ids import new_message_id
    from mailcore.domain.mailbox import INBOX, StoredMessage
    from mailcore.imap_view.view import make_view
    from mailcore.parsing.bounded import summarise
    from mailcore.ports import KeptView

    filed: list[str] = []
    for first in range(0, count, BATCH):
        arrivals, kept = [], []
        for number in range(first, min(first + BATCH, count)):
            raw = message(number)
            message_id = new_message_id()
            key = adapters.store.appended_key(message_id)
            adapters.store.put_object(key, raw, "message/rfc822")
            arrivals.append((StoredMessage(
                account=account, message_id=message_id, folder=folder or INBOX,
                received_at=datetime.now(UTC), raw_key=key, size=len(raw),
                summary=summarise(raw), accepted_id=message_id), 1))
            if views is not None:
                kept.append(KeptView(account, message_id, key, make_view(raw)))
            filed.append(message_id)
        # False for a message already there: a transaction botocore sent again after a
        # timeout, which moto had run (the bench checks the folder's count when it opens it).
        adapters.mailboxes.file_together(arrivals)
        if kept:
            views.put(kept)
    return filed


def ordinary_message(number: int, account: str) -> bytes:
    """An ordinary message of about 27 KB, as the issue's measurements used: a reply in a
    thread from one of 97 senders, text and HTML alternatives in quoted-printable UTF-8."""
    sender = number % 97
    text = ("Bonjour, voici les notes de la r=C3=A9union de mardi, point par point, avec =\r\n"
            "les d=C3=A9cisions prises et ce qui reste =C3=A0 faire avant vendredi.\r\n")
    html = ("<p>Bonjour, voici les notes de la r=C3=A9union de mardi, point par point, =\r\n"
            "avec les d=C3=A9cisions prises et ce qui reste =C3=A0 faire.</p>\r\n")
    return (f"Return-Path: <sender{sender}@crepes.fr>\r\n"
            f"Received: from mx.crepes.fr (mx.crepes.fr [192.0.2.{sender}]) by mx.example.test"
            f" with ESMTPS id {number:08x}; Fri, 27 Nov 2026 10:00:00 +0000\r\n"
            f"From: =?utf-8?q?Andr=C3=A9_Sender_{sender}?= <sender{sender}@crepes.fr>\r\n"
            f"To: {account}\r\nCc: Team <team@crepes.fr>\r\n"
            f"Subject: Re: =?utf-8?q?r=C3=A9union?= notes {number}\r\n"
            f"Date: Fri, 27 Nov 2026 10:{number // 60 % 60:02d}:{number % 60:02d} +0000\r\n"
            f"Message-ID: <{number}.bench@crepes.fr>\r\n"
            f"In-Reply-To: <{max(number - 1, 0)}.bench@crepes.fr>\r\n"
            f"References: <0.bench@crepes.fr> <{max(number - 1, 0)}.bench@crepes.fr>\r\n"
            "MIME-Version: 1.0\r\nX-Mailer: bench\r\n"
            'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
            "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + text * 84
            + "\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + html * 95
            + "\r\n--alt--\r\n").encode()
