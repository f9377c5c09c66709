"""FETCH from the stored IMAP views, on the DynamoDB and S3 adapters (the template's
resources in moto), driven by imaplib and compared with a private Dovecot holding the same
messages: what a client asks to show a folder reads no message bytes and makes at most
N/100 + 3 storage requests; the header section and a large message's leaf part are
ranged reads; a message without a view gets one at its first FETCH."""

from __future__ import annotations

import base64
import imaplib
import math
import os
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mailcore.adapters.aws import clients
from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import StoredMessage
from mailcore.imap_view.view import make_view
from mailcore.parsing.bounded import summarise
from mailcore.ports import KeptView
from mailcore.wiring import aws_adapters
from tests.dovecot_support import PASSWORD, private_dovecot
from tests.imap_support import running_imap

BOB = "bob@hamburger.edu"
FOLDER_SIZE = 150
VIEW_BATCHES = math.ceil(FOLDER_SIZE / 100)
THUNDERBIRD_FIELDS = ("From To Cc Bcc Subject Date Message-ID Priority X-Priority References "
                      "Newsgroups In-Reply-To Content-Type Reply-To")
SHOWING_A_FOLDER = {
    "structure": "(FLAGS ENVELOPE BODYSTRUCTURE)",
    "thunderbird": f"(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS ({THUNDERBIRD_FIELDS})])",
    "body": "(BODY)",
    "internaldate": "(INTERNALDATE)",
    "size": "(RFC822.SIZE)",
}
LISTED_ALONE = {"internaldate", "size"}  # known from the listing: no view read
READING_HEADERS = ("BODY.PEEK[HEADER]", "BODY.PEEK[HEADER.FIELDS (X-Unknown)]",
                   "BODY.PEEK[HEADER.FIELDS.NOT (Subject Received)]")
EACH_ITEM = ("FLAGS", "ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.SIZE", "INTERNALDATE",
             f"BODY.PEEK[HEADER.FIELDS ({THUNDERBIRD_FIELDS})]", *READING_HEADERS)


def _message(number: int) -> bytes:
    """Ordinary mail of a few shapes: plain, alternative, with an attachment, a header
    without a body (no blank line), folded and encoded fields, a field no view keeps."""
    head = (f"From: =?utf-8?q?S=C3=A9nder_{number % 7}?= <sender{number % 7}@crepes.fr>\r\n"
            f"To: Bob <bob@hamburger.edu>, carol@hamburger.edu\r\n"
            f"Subject: message {number}\r\n\tfolded\r\n"
            f"Date: Fri, 27 Nov 2026 10:{number // 60 % 60:02d}:{number % 60:02d} +0100\r\n"
            f"Message-ID: <{number}@crepes.fr>\r\n"
            + (f"In-Reply-To: <{number - 1}@crepes.fr>\r\nReferences: <{number - 1}@crepes.fr>"
               "\r\n" if number % 3 else "")
            + (f"X-Unknown: kept nowhere {number}\r\n" if number % 2 else ""))
    shape = number % 5
    if shape == 0:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                + f"line {number}\r\n" * 30).encode()
    if shape == 1:
        return (head + "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; "
                "boundary=alt\r\n\r\n--alt\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
                "--alt\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--alt--\r\n").encode()
    if shape == 2:
        return (head + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=mix\r\n"
                "\r\n--mix\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--mix\r\n"
                "Content-Type: application/pdf; name=a.pdf\r\nContent-Disposition: "
                "attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + base64.encodebytes(bytes(range(256)) * 4).decode().replace("\n", "\r\n")
                + "--mix--\r\n").encode()
    if shape == 3:
        return head.encode()  # a header and nothing else: no blank line
    return (head + "\r\n").encode()  # a header and the blank line, no body


def _received(number: int) -> datetime:
    return datetime(2026, 11, 27, 9, 0, tzinfo=UTC) + timedelta(minutes=number)


class StorageRequests:
    """Every request the adapters make, by (service, operation), and the S3 reads with
    the byte ranges they asked for, from botocore's events on the shared clients."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.ranges: list[str | None] = []
        for client, service in ((clients.dynamodb_client(), "dynamodb"),
                                (clients.s3_client(), "s3")):
            client.meta.events.register(f"before-parameter-build.{service}", self._called)

    def _called(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        self.calls[(service, model.name)] += 1
        if (service, model.name) == ("s3", "GetObject"):
            self.ranges.append(params.get("Range"))

    def reset(self) -> None:
        self.calls.clear()
        self.ranges.clear()

    @property
    def dynamodb(self) -> int:
        return sum(count for (service, _), count in self.calls.items() if service == "dynamodb")

    @property
    def whole_reads(self) -> int:
        return sum(1 for asked in self.ranges if asked is None)

    def bytes_asked(self) -> int:
        total = 0
        for asked in self.ranges:
            assert asked is not None
            first, last = re.fullmatch(r"bytes=(\d+)-(\d+)", asked).groups()  # type: ignore[union-attr]
            total += int(last) - int(first) + 1
        return total


def _file(adapters: Any, raws: list[bytes], with_views: bool) -> list[StoredMessage]:
    """The messages filed as filing files them (own object, reference, UID), with their
    views kept, as filing will keep them, or without (filed before views existed)."""
    filed = []
    for number, raw in enumerate(raws):
        message_id = new_message_id()
        key = adapters.store.appended_key(message_id)
        adapters.store.put_object(key, raw, "message/rfc822")
        adapters.references.hold(key, 1)
        message = StoredMessage(account=BOB, message_id=message_id, folder="Inbox",
                                received_at=_received(number), raw_key=key, size=len(raw),
                                summary=summarise(raw), accepted_id=message_id)
        adapters.mailboxes.file(message)
        filed.append(message)
    if with_views:
        adapters.imap_views.put([KeptView(BOB, message.message_id, message.raw_key,
                                          make_view(raw)) for message, raw
                                 in zip(filed, raws, strict=True)])
    return filed


@pytest.fixture(scope="module")
def dovecot() -> Iterator[int]:
    with private_dovecot() as reference:
        yield reference.imap_port


def _dovecot_client(port: int, raws: list[bytes], user: str) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", port)
    client.login(f"{user}{os.getpid()}", PASSWORD)
    for number, raw in enumerate(raws):
        assert client.append("INBOX", None, _received(number), raw)[0] == "OK"
    client.select("INBOX")
    return client


def _answer(client: imaplib.IMAP4, item: str, messages: str = "1:*") -> bytes:
    status, data = client.fetch(messages, f"({item})")
    assert status == "OK", (item, data)
    joined = b"".join(part if isinstance(part, bytes) else b"".join(part) for part in data
                      if part is not None)
    # \Recent is Dovecot's own (RFC 9051 dropped it); mailpipe keeps none.
    return joined.replace(b"\\Recent", b"")


def _by_message(client: imaplib.IMAP4, item: str) -> dict[int, bytes]:
    """Each message's answer to FETCH 1:* (item), by sequence number."""
    status, data = client.fetch("1:*", f"({item})")
    assert status == "OK", (item, data)
    answers: dict[int, bytes] = {}
    seq = 0
    for part in data:
        text = part[0] if isinstance(part, tuple) else part
        assert isinstance(text, bytes)
        started = re.match(rb"(\d+) \(", text)
        if started:
            seq = int(started.group(1))
        joined = b"".join(part) if isinstance(part, tuple) else text
        # \Recent is Dovecot's own (RFC 9051 dropped it); mailpipe keeps none.
        answers[seq] = answers.get(seq, b"") + joined.replace(b"\\Recent", b"")
    return answers


def _known_difference(number: int, item: str) -> bool:
    """Fields chosen from a header that has no blank line (the message is all header):
    Dovecot ends the answer with a blank line anyway; mailpipe, from its views as from the
    bytes before them (mailcore/imap_view/sections.py header_fields), does not."""
    chosen = item == EACH_ITEM[6] or (item == READING_HEADERS[1] and number % 2 == 1)
    return number % 5 == 3 and chosen


def test_showing_a_folder_reads_no_message_bytes_and_answers_as_dovecot(
        stack: Any, dovecot: int) -> None:
    """GIVEN 150 messages of several shapes, filed with their views WHEN a client asks what
    mail clients ask to show a folder (flags, envelope, structure, Thunderbird's header
    fields, BODY, INTERNALDATE) THEN no message object is read, at most 150/100 + 3
    storage requests are made for each FETCH, and every answer is Dovecot's; and the
    header section and fields no view keeps are each one ranged read per message."""
    adapters = aws_adapters()
    raws = [_message(number) for number in range(FOLDER_SIZE)]
    _file(adapters, raws, with_views=True)
    reference = _dovecot_client(dovecot, raws, "folder")
    requests = StorageRequests()
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views,
                      store=adapters.store, references=adapters.references) as imap:
        client = imap.logged_in()
        assert client.select("INBOX") == ("OK", [str(FOLDER_SIZE).encode()])
        for name, items in SHOWING_A_FOLDER.items():
            requests.reset()
            status, data = client.uid("FETCH", "1:*", items)
            assert status == "OK"
            assert sum(re.match(rb"\d+ \(", part[0] if isinstance(part, tuple) else part)
                       is not None for part in data) == FOLDER_SIZE, name
            assert requests.ranges == [], (name, requests.calls)
            # The views in batches of 100 (BatchGetItem's most), and the folder's own
            # update that every command makes (its item, its change log).
            views_read = requests.calls[("dynamodb", "BatchGetItem")]
            assert views_read == (0 if name in LISTED_ALONE else VIEW_BATCHES), name
            assert requests.dynamodb <= FOLDER_SIZE / 100 + 3, (name, requests.calls)
        for item in READING_HEADERS:
            requests.reset()
            _answer(client, item)
            assert len(requests.ranges) == FOLDER_SIZE and requests.whole_reads == 0, item
            # Where the bytes are, read with the views: a batch of each per 100 messages.
            assert requests.dynamodb <= 2 * VIEW_BATCHES + 3, (item, requests.calls)
        differing = {(seq, item) for item in EACH_ITEM
                     for seq, answer in _by_message(client, item).items()
                     if answer != _by_message(reference, item)[seq]}
        assert differing == {(number + 1, item) for number in range(FOLDER_SIZE)
                             for item in EACH_ITEM if _known_difference(number, item)}
    reference.logout()


def test_a_message_without_a_view_gets_it_at_its_first_fetch(stack: Any) -> None:
    """GIVEN messages filed before views existed, one whose view is of other bytes, and
    ones filed with theirs WHEN a client fetches their structure twice THEN the first
    FETCH reads the bytes of those without a view of their bytes and keeps their views,
    the second reads no message bytes and writes nothing, and both answer the same."""
    adapters = aws_adapters()
    _file(adapters, [_message(number) for number in range(3)], with_views=True)
    _file(adapters, [_message(number) for number in range(3, 5)], with_views=False)
    # A view of other bytes than the message's (a draft saved again, its view read a
    # moment behind): made again from the bytes too.
    [resaved] = _file(adapters, [_message(5)], with_views=False)
    adapters.imap_views.put([KeptView(BOB, resaved.message_id, resaved.raw_key,
                                      make_view(_message(15)))])
    requests = StorageRequests()
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views,
                      store=adapters.store, references=adapters.references) as imap:
        client = imap.logged_in()
        client.select("INBOX")
        fetched = []
        for _ in range(2):
            requests.reset()
            answer = _answer(client, "ENVELOPE BODYSTRUCTURE")
            fetched.append((answer, requests.calls.copy(), requests.whole_reads))
    (first, first_calls, first_whole), (second, second_calls, _) = fetched
    assert first == second and first.count(b"ENVELOPE") == 6
    assert b'"<5@crepes.fr>"' in first and b"<15@crepes.fr>" not in first
    assert first_calls[("s3", "GetObject")] == first_whole == 3
    # The three views together, each kept only while its message is there and has none
    # (a draft saved meanwhile keeps its own): one transaction.
    assert first_calls[("dynamodb", "TransactWriteItems")] == 1
    assert first_calls[("dynamodb", "GetItem")] <= 2  # the folder's: where the bytes are
    assert first_calls[("dynamodb", "BatchGetItem")] == 2  # is read with the views
    assert second_calls[("s3", "GetObject")] == 0
    assert second_calls[("dynamodb", "TransactWriteItems")] == 0


def test_a_part_of_a_large_message_is_a_ranged_read(stack: Any, dovecot: int) -> None:
    """GIVEN a 2 MiB message of a short text and a large attachment, filed with its view
    WHEN a client fetches the text, the attachment, its MIME header, decoded and its size
    THEN each is a ranged read of that part's bytes, never the whole object, and the
    answers are Dovecot's (BINARY: the attachment's own bytes)."""
    attachment = bytes(range(1, 256)) * (2 * 1024 * 1024 // 255)
    encoded = base64.encodebytes(attachment).replace(b"\n", b"\r\n")
    raw = (b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: large\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=big\r\n\r\n"
           b"--big\r\nContent-Type: text/plain\r\n\r\nThe file, attached.\r\n--big\r\n"
           b"Content-Type: application/octet-stream; name=blob.bin\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--big--\r\n")
    adapters = aws_adapters()
    _file(adapters, [raw], with_views=True)
    reference = _dovecot_client(dovecot, [raw], "large")
    requests = StorageRequests()
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views,
                      store=adapters.store, references=adapters.references) as imap:
        client = imap.logged_in()
        client.select("INBOX")
        for item in ("BODY.PEEK[1]", "BODY.PEEK[2]", "BODY.PEEK[2.MIME]"):
            requests.reset()
            assert _answer(client, item) == _answer(reference, item), item
            assert len(requests.ranges) == 1 and requests.whole_reads == 0, item
            assert requests.bytes_asked() < len(raw) - 100, item
        requests.reset()
        status, data = client.fetch("1", "(BINARY.PEEK[2])")
        assert status == "OK" and data[0][1] == attachment  # type: ignore[index]
        assert _answer(client, "BINARY.SIZE[2]") == b"1 (BINARY.SIZE[2] %d)" % len(attachment)
        assert requests.whole_reads == 0 and len(requests.ranges) == 2
    reference.logout()
