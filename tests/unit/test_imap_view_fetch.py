"""FETCH from a message's view and ranged reads (edge/imap/backend/view_message.py) answers
byte for byte as FETCH from its whole bytes (message.py RawLoadedMessage), for any bytes:
the header section read alone, header fields kept or not, and each part a section number
names, read alone wherever the part map says it is a plain leaf."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymap.parsing.specials import FetchRequirement

from edge.imap.backend import view_message
from edge.imap.backend.message import ImapMessage, RawLoadedMessage
from edge.imap.backend.storage import Blocking, ImapStorage
from edge.imap.backend.view_message import ViewLoadedMessage, _Bytes
from mailcore.adapters.memory.directory import InMemoryAccountDirectory
from mailcore.adapters.memory.login_throttle import InMemoryLoginThrottle
from mailcore.adapters.memory.mailbox import InMemoryMailboxRepository
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.adapters.memory.views import InMemoryImapViews
from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import StoredMessage
from mailcore.imap_view.view import make_view
from mailcore.parsing.bounded import summarise

ACCOUNT = "bob@hamburger.edu"
LINES = st.sampled_from([
    b"Content-Type: multipart/mixed; boundary=b", b"Content-Type: message/rfc822",
    b"Content-Type: multipart/digest; boundary=\"b\"", b"Content-Type: text/plain",
    b"--b", b"--b--", b"", b"", b"From: a <b@c>", b"Subject: =?x?q?y?=", b" folded",
    b"\xff\xfe", b"X-Unknown: u", b"body", b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable", b"aGVsbG8=", b"caf=C3=A9=", b"To: ;;;"])
BREAKS = st.sampled_from([b"\r\n", b"\n"])
NAMES = st.lists(st.sampled_from([b"SUBJECT", b"FROM", b"X-UNKNOWN", b"TO", b"CONTENT-TYPE",
                                  b"RECEIVED"]), min_size=1, max_size=3)
SECTIONS = st.lists(st.integers(1, 3), min_size=1, max_size=4)


@pytest.fixture(scope="module")
def storage() -> Iterator[ImapStorage]:
    mailboxes = InMemoryMailboxRepository()
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield ImapStorage(mailboxes=mailboxes, store=InMemoryMessageStore(),
                          references=mailboxes.references,
                          directory=InMemoryAccountDirectory({}),
                          throttle=InMemoryLoginThrottle(), blocking=Blocking(executor),
                          views=InMemoryImapViews(mailboxes))


def _filed(storage: ImapStorage, raw: bytes) -> ImapMessage:
    message_id = new_message_id()
    key = storage.store.appended_key(message_id)
    storage.store.put_object(key, raw, "message/rfc822")
    storage.mailboxes.file(StoredMessage(account=ACCOUNT, message_id=message_id,
                                         folder="Inbox", received_at=datetime.now(UTC),
                                         raw_key=key, size=len(raw), summary=summarise(raw)))
    entry = storage.mailboxes.get(ACCOUNT, message_id).uid_entry
    return ImapMessage(entry, ACCOUNT, storage)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(LINES, max_size=30), BREAKS, NAMES, st.lists(SECTIONS, max_size=4))
def test_answers_from_the_view_and_ranges_are_those_from_the_bytes(
        storage: ImapStorage, monkeypatch: pytest.MonkeyPatch, lines: list[bytes],
        line_break: bytes, names: list[bytes], numbers: list[list[int]]) -> None:
    # Every message "large": each leaf part is read alone.
    monkeypatch.setattr(view_message, "LARGE_MESSAGE", 0)
    raw = line_break.join(lines)
    message = _filed(storage, raw)
    requirement = FetchRequirement.CONTENT
    whole = RawLoadedMessage(message, requirement, raw)
    view = make_view(raw)

    def from_view() -> ViewLoadedMessage:
        # Each answer from a message of its own: no range is cut from bytes another read.
        return ViewLoadedMessage(message, requirement, view, _Bytes(message))

    assert bytes(from_view().get_envelope_structure()) == bytes(whole.get_envelope_structure())
    assert bytes(from_view().get_body_structure()) == bytes(whole.get_body_structure())
    assert bytes(from_view().get_body_structure().extended) == \
        bytes(whole.get_body_structure().extended)
    assert from_view().get_size() == whole.get_size()
    assert bytes(from_view().get_message_headers()) == bytes(whole.get_message_headers())
    for inverse in (False, True):
        assert bytes(from_view().get_message_headers(None, frozenset(names), inverse)) == \
            bytes(whole.get_message_headers(None, frozenset(names), inverse)), inverse
    for section in numbers:
        for binary in (False, True):
            assert bytes(from_view().get_body(section, binary)) == \
                bytes(whole.get_body(section, binary)), (section, binary)
        assert bytes(from_view().get_headers(section)) == bytes(whole.get_headers(section))


def test_a_leaf_part_is_read_alone_and_anything_else_whole(storage: ImapStorage) -> None:
    """The part map locates BODY[2] of a large message: one ranged read of its bytes; a
    multipart part (BODY[1] here) is answered from the whole message."""
    raw = (b"Subject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
           b"Content-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\r\nplain\r\n"
           b"--c--\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n"
           + b"x" * (view_message.LARGE_MESSAGE + 1) + b"\r\n--b--\r\n")
    message = _filed(storage, raw)
    store = storage.store
    assert isinstance(store, InMemoryMessageStore)
    view = make_view(raw)
    whole = RawLoadedMessage(message, FetchRequirement.CONTENT, raw)
    for section, ranged in (([2], 1), ([1], 0), ([1, 1], 1), ([3], 0)):
        before = store.ranged_reads
        content = _Bytes(message)
        loaded = ViewLoadedMessage(message, FetchRequirement.CONTENT, view, content)
        assert bytes(loaded.get_body(section)) == bytes(whole.get_body(section)), section
        assert store.ranged_reads - before == ranged, section
        assert (content.raw is None) == bool(ranged), section
