"""Through the real IMAP server: what a client fetches and searches to show a folder is
answered the same whether the messages' stored IMAP views are there or not (then the raw
bytes are read and parsed, and may be made into views on the way). Two runs of one server
compared, so the test holds whichever path FETCH and SEARCH take."""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from mailcore import s3_keys
from mailcore.adapters.aws.dynamodb_keys import imap_view_key
from mailcore.adapters.memory.mailbox import InMemoryMailboxRepository
from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import INBOX, StoredMessage
from mailcore.imap_view.view import make_view
from mailcore.parsing.bounded import summarise
from mailcore.ports import KeptView
from mailcore.wiring import AwsAdapters, aws_adapters
from tests.imap_support import ACCOUNTS, RunningImap, running_imap
from tests.raw_imap import RawImap
from tests.unit.test_imap_view import SHAPES

ACCOUNT = "bob@hamburger.edu"
MAX_SIZE = 50 * 2**20
THUNDERBIRD_FIELDS = (b"From To Cc Bcc Subject Date Message-ID Priority X-Priority References "
                      b"Newsgroups In-Reply-To Content-Type Reply-To")
FETCHES = [
    b"(FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY)",
    b"(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (%s)])" % THUNDERBIRD_FIELDS,
    b"(BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS (X-Spam Received)] "
    b"BODY.PEEK[HEADER.FIELDS.NOT (Subject)] BODY.PEEK[1] BINARY.PEEK[1.2] BODY.PEEK[1.MIME])",
]
SEARCHES = [b"FROM alice", b"TO bob", b"CC team", b"SUBJECT caf\xc3\xa9", b"SUBJECT deep",
            b"HEADER Message-ID <1@crepes.fr>", b"SENTSINCE 1-Jan-2026", b"BCC nobody",
            b"OR FROM andr\xc3\xa9 SUBJECT \xc3\xa9t\xc3\xa9", b"HEADER X-Spam yes",
            b"SUBJECT apple", b"FROM c@d"]

ORDINARY = [
    b"From: Alice <alice@crepes.fr>\r\nTo: bob@hamburger.edu\r\nCc: Team: x@y, \"Z\" <z@w>;\r\n"
    b"Subject: =?utf-8?q?caf=C3=A9?= number 1\r\nDate: Fri, 27 Nov 2026 10:00:00 +0100\r\n"
    b"Message-ID: <1@crepes.fr>\r\nX-Spam: yes\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/alternative; boundary=\"a\"\r\n\r\n--a\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
    b"\r\n\r\ncaf=C3=A9\r\n--a\r\nContent-Type: text/html\r\n\r\n<p>caf\xc3\xa9</p>\r\n--a--\r\n",
    b"From: bob@hamburger.edu\r\nTo: alice@crepes.fr\r\nSubject: Re: deep\r\n"
    b"In-Reply-To: <1@crepes.fr>\r\nReferences: <1@crepes.fr>\r\n\r\nplain body\r\n",
]
HOSTILE = [SHAPES[name] for name in (
    "multipart nested past the limit", "message/rfc822 nested past the limit",
    "thousands of parts", "thousands of parts, never closed", "no blank line",
    "only a blank line", "8-bit header", "duplicated fields")] + [
    b"Subject: unclosed\r\nContent-Type: multipart/mixed; boundary=u\r\n\r\n--u\r\n\r\none\r\n"
    b"--u\r\n--u\r\nContent-Type: message/rfc822\r\n\r\nFrom: andr\xc3\xa9@x\r\n",
    b"From: " + b"=?utf-8?q?Andr=C3=A9?= <a@b>, " * 3000 + b"c@d\r\nSubject: big\r\n\r\nx",
    # A view too large for a DynamoDB item (an incompressible Subject in its ENVELOPE; too
    # long for the header fields a view keeps): on the table, an object beside the message.
    b"From: a@b\r\nSubject: " + base64.b64encode(random.Random(27).randbytes(600_000))
    + b"\r\n\r\nbody\r\n",
]
# Bare LF kept as it is: the APPEND of imaplib would make it CRLF, so these are filed
# through the ports APPEND files through.
BARE_LF = [SHAPES["bare LF"], ORDINARY[0].replace(b"\r\n", b"\n")]


def _answers(imap: RunningImap) -> list[object]:
    """SELECT, each FETCH over the whole folder (imaplib), each SEARCH (8-bit criteria as
    literals, which imaplib does not send)."""
    client = imap.logged_in(ACCOUNT)
    try:
        status, data = client.select("INBOX", readonly=True)
        assert status == "OK", data
        answers: list[object] = [data]
        for items in FETCHES:
            status, fetched = client.fetch("1:*", items.decode("latin-1"))
            assert status == "OK", fetched
            answers.append(fetched)
    finally:
        client.logout()
    raw = RawImap.connect(imap.imaps_port, imap.client_tls())
    try:
        raw.login(ACCOUNT, ACCOUNTS[ACCOUNT])
        assert raw.command(b"EXAMINE INBOX").status == b"OK"
        for criteria in SEARCHES:
            answer = raw.command(b"SEARCH CHARSET UTF-8 " + b" ".join(
                _astring(word) for word in criteria.split(b" ")))
            assert answer.status == b"OK", answer
            answers.append(answer.searched())
    finally:
        raw.close()
    return answers


def _astring(word: bytes) -> bytes:
    return word if word.isascii() else b"{%d}\r\n%b" % (len(word), word)


def _file(imap: RunningImap) -> list[bytes]:
    client = imap.logged_in(ACCOUNT)
    for raw in ORDINARY + HOSTILE:
        status, data = client.append("INBOX", None, None, raw)
        assert status == "OK", data
    client.logout()
    storage = imap.storage
    for raw in BARE_LF:  # filed as APPEND files them, through the store and mailbox ports
        message_id = new_message_id()
        key = storage.store.appended_key(message_id)
        storage.store.put_object(key, raw, "message/rfc822")
        assert storage.mailboxes.file(StoredMessage(
            account=ACCOUNT, message_id=message_id, folder=INBOX,
            received_at=datetime.now(UTC), raw_key=key, size=len(raw),
            summary=summarise(raw), accepted_id=message_id), holding=1)
    return ORDINARY + HOSTILE + BARE_LF


def _message_ids(imap: RunningImap) -> list[tuple[str, str]]:
    page = imap.storage.mailboxes.list_folder(ACCOUNT, INBOX, 1000, None)
    return [(message.message_id, message.raw_key) for message in page.messages]


def _put_views(imap: RunningImap) -> None:
    storage = imap.storage
    storage.views.put([KeptView(ACCOUNT, message_id, raw_key,
                                make_view(storage.store.get_object(raw_key, MAX_SIZE)))
                       for message_id, raw_key in _message_ids(imap)])


def _views_kept(imap: RunningImap) -> int:
    ids = [message_id for message_id, _ in _message_ids(imap)]
    return len(imap.storage.views.get_many(ACCOUNT, ids))


def _memory_views_deleted(mailboxes: InMemoryMailboxRepository) -> Callable[[], None]:
    return mailboxes.views.clear


def _table_views_deleted(imap: RunningImap, adapters: AwsAdapters) -> Callable[[], None]:
    views = adapters.imap_views

    def delete() -> None:
        for message_id, raw_key in _message_ids(imap):
            views._client.delete_item(TableName=views._table,
                                      Key=imap_view_key(ACCOUNT, message_id))
            views._s3.delete_object(Bucket=views._bucket,
                                    Key=s3_keys.imap_view_object_key(raw_key))

    return delete


def _same_answers(imap: RunningImap, delete_views: Callable[[], None],
                  view_objects: Callable[[], int] = lambda: 0) -> int:
    filed = _file(imap)
    delete_views()
    assert _views_kept(imap) == 0
    assert view_objects() == 0
    from_raw = _answers(imap)
    lazily_made = _answers(imap)  # the views the first FETCH made, if it makes them
    delete_views()
    _put_views(imap)
    assert _views_kept(imap) == len(filed)
    views_in_objects = view_objects()
    from_views = _answers(imap)
    from_views_again = _answers(imap)
    assert from_views == from_raw
    assert lazily_made == from_raw
    assert from_views_again == from_raw
    # The answers are about these messages: every one fetched, and the searches find some.
    fetched = from_raw[1]
    assert isinstance(fetched, list)
    assert sum(isinstance(part, tuple) for part in fetched) >= len(filed)
    assert any(from_raw[1 + len(FETCHES):])
    return views_in_objects


def test_fetch_and_search_answer_the_same_with_views_and_from_the_raw_bytes():
    """GIVEN ordinary and hostile messages in a folder WHEN a client fetches what it shows
    a folder with (ENVELOPE, BODYSTRUCTURE, BODY, header fields, sections) and searches
    header criteria, with no views stored, then with the views the raw path would make
    THEN the answers are the same, byte for byte."""
    mailboxes = InMemoryMailboxRepository()
    with running_imap(mailboxes=mailboxes) as imap:
        _same_answers(imap, _memory_views_deleted(mailboxes))


def test_the_same_on_the_table(stack):
    """As above, with the views in their DynamoDB items (and S3 objects) read in batches."""
    adapters = aws_adapters()
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views,
                      store=adapters.store, references=adapters.references) as imap:
        views = adapters.imap_views

        def view_objects() -> int:
            listed = views._s3.list_objects_v2(Bucket=views._bucket)
            return sum(item["Key"].endswith(s3_keys.IMAP_VIEW_SUFFIX)
                       for item in listed.get("Contents", []))

        # One view (the large one) went to an object beside its message, the others to items.
        assert _same_answers(imap, _table_views_deleted(imap, adapters), view_objects) == 1


def test_a_view_of_another_message_would_be_told_apart():
    """The comparison above can fail: a view that is not the message's changes the answer
    once FETCH or SEARCH reads views (before then, both runs read the bytes and this is
    skipped). The two messages are of one size, so that the view passes for the other's."""
    pair = [b"From: a@b\r\nSubject: apple\r\n\r\nbody\r\n",
            b"From: c@d\r\nSubject: lemon\r\n\r\nbody\r\n"]
    assert len(pair[0]) == len(pair[1])
    mailboxes = InMemoryMailboxRepository()
    with running_imap(mailboxes=mailboxes) as imap:
        client = imap.logged_in(ACCOUNT)
        for raw in pair:
            assert client.append("INBOX", None, None, raw)[0] == "OK"
        client.logout()
        mailboxes.views.clear()
        from_raw = _answers(imap)
        storage = imap.storage
        first, second = storage.mailboxes.list_folder(ACCOUNT, INBOX, 10, None).messages
        swapped = make_view(storage.store.get_object(second.raw_key, MAX_SIZE))
        storage.views.put([KeptView(ACCOUNT, first.message_id, first.raw_key, swapped)])
        reads = storage.views.reads  # type: ignore[attr-defined]
        from_swapped = _answers(imap)
        if storage.views.reads == reads:  # type: ignore[attr-defined]
            pytest.skip("FETCH and SEARCH read no views yet: nothing to tell apart")
        assert from_swapped != from_raw

