"""Hostile MIME: whatever the structure, an accepted message is filed once and readable.

Hypothesis builds the trees an attacker would: deep nesting of every multipart kind and of
message/rfc822, thousands of parts, huge and recursive header fields, broken boundaries,
unknown charsets and transfer encodings. Each is filed twice (SQS delivers at least once)
and then read as the API reads it, under a wall-clock bound.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailcore.adapters.memory.mailbox import InMemoryMailboxRepository
from mailcore.adapters.memory.raw_references import InMemoryRawReferences
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.adapters.memory.views import InMemoryImapViews
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import INBOX
from mailcore.domain.mime_limits import MAX_NESTING, MAX_PARTS
from mailcore.parsing.bounded import attachment_content, read_content, summarise
from mailcore.services.filing import file_inbound
from mailcore.services.reading import read_message
from mailcore.services.recipients import HostedDomains

DOMAINS = HostedDomains.of(["hamburger.edu"])
# Filing holds the raw bytes' references; their accounting is tested on its own.
REFERENCES = InMemoryRawReferences()
BOB = "bob@hamburger.edu"
# Not a speed target (bench/ has those): a read that had not answered by now would have
# hung. Each parse is bounded by its parse_seconds, and a read parses at most three times.
HUNG_SECONDS = 60.0

MULTIPART_KINDS = ("mixed", "alternative", "related", "digest", "parallel", "signed", "report")
CHARSETS = ("utf-8", "x-unknown", "iso-8859-1", "utf-7", "", "\"", "utf-8''")
ENCODINGS = ("base64", "quoted-printable", "7bit", "8bit", "x-uuencode", "binary", "bogus")


def _headers(subject: bytes = b"hostile") -> bytes:
    return (b"From: Mallory <mallory@evil.example>\r\nTo: bob@hamburger.edu\r\n"
            b"Subject: " + subject + b"\r\nMIME-Version: 1.0\r\n")


def nested(depth: int, kind: str) -> bytes:
    opening = b"".join(
        b"Content-Type: multipart/%s; boundary=\"b%d\"\r\n\r\n--b%d\r\n"
        % (kind.encode(), level, level) for level in range(depth))
    closing = b"".join(b"\r\n--b%d--\r\n" % level for level in reversed(range(depth)))
    return _headers() + opening + b"Content-Type: text/plain\r\n\r\ninnermost\r\n" + closing


def nested_rfc822(depth: int) -> bytes:
    inner = b"From: x@y.example\r\nSubject: inner\r\n\r\ninnermost\r\n"
    for level in range(depth):
        inner = (b"From: x@y.example\r\nContent-Type: message/rfc822\r\n"
                 b"Subject: level %d\r\n\r\n" % level) + inner
    return _headers() + b"Content-Type: message/rfc822\r\n\r\n" + inner


def many_parts(count: int, part: bytes) -> bytes:
    return (_headers() + b"Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
            + (b"--B\r\n" + part) * count + b"--B--\r\n")


def huge_header(name: bytes, unit: bytes, repeat: int) -> bytes:
    return _headers() + name + b": " + unit * repeat + b"\r\n\r\nbody\r\n"


def odd_part(charset: str, encoding: str, body: bytes, boundary: bytes) -> bytes:
    return (_headers() + b"Content-Type: multipart/mixed; boundary=\"" + boundary + b"\"\r\n\r\n"
            + b"--" + boundary + b"\r\nContent-Type: text/plain; charset=" + charset.encode()
            + b"\r\nContent-Transfer-Encoding: " + encoding.encode() + b"\r\n\r\n" + body
            + b"\r\n--" + boundary[:-1] + b"--\r\n")  # the close delimiter is broken


hostile_messages = st.one_of(
    st.builds(nested, st.integers(MAX_NESTING // 2, 6 * MAX_NESTING),
              st.sampled_from(MULTIPART_KINDS)),
    st.builds(nested_rfc822, st.integers(MAX_NESTING // 2, 6 * MAX_NESTING)),
    st.builds(many_parts, st.integers(MAX_PARTS // 2, 6 * MAX_PARTS),
              st.sampled_from([b"\r\n", b"Content-Disposition: attachment\r\n\r\nx\r\n",
                               b"Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\n"])),
    st.builds(huge_header, st.sampled_from([b"To", b"From", b"Subject", b"Cc", b"References",
                                            b"Content-Type", b"X-Junk"]),
              st.sampled_from([b"(", b"\"a", b"a@b,", b"=?utf-8?q?a?= ", b"<", b"a(b\"c<",
                               b"\\", b"\x00\xff"]),
              st.integers(1000, 40_000)),
    st.builds(odd_part, st.sampled_from(CHARSETS), st.sampled_from(ENCODINGS),
              st.binary(max_size=2000), st.binary(min_size=1, max_size=70)),
    st.binary(max_size=5000),
)


def _stored(store: InMemoryMessageStore, raw: bytes) -> str:
    envelope = Envelope(mail_from="mallory@evil.example", rcpt_tos=(BOB,), peer="192.0.2.1",
                        helo="evil.example", tls=False, received_at=datetime.now(UTC))
    return store.put(new_message_id(), raw, envelope)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large])
@given(raw=hostile_messages)
def test_every_hostile_message_is_filed_once_and_readable(raw: bytes) -> None:
    store, mailboxes = InMemoryMessageStore(), InMemoryMailboxRepository()
    key = _stored(store, raw)

    first = file_inbound(key, store, mailboxes, DOMAINS, references=REFERENCES,
                         views=InMemoryImapViews(mailboxes))
    again = file_inbound(key, store, mailboxes, DOMAINS, references=REFERENCES,
                         views=InMemoryImapViews(mailboxes))

    assert first.filed_for == (BOB,)
    assert again.filed_for == () and again.already_filed_for == (BOB,)
    [stored] = mailboxes.list_folder(BOB, INBOX, 10, None).messages
    started = time.monotonic()
    view = read_message(BOB, stored.message_id, mailboxes, store, "mx.hamburger.edu")
    attachment_content(store.get_raw(key), 0)
    assert time.monotonic() - started < HUNG_SECONDS
    assert view.stored.message_id == stored.message_id
    assert store.get_raw(key) == raw  # the raw bytes are what is served, whole


def test_nesting_beyond_the_recursion_limit_is_summarised_from_its_header_lines() -> None:
    for raw in (nested(400, "mixed"), nested_rfc822(400), huge_header(b"Cc", b"(", 4000)):
        summary = summarise(raw)
        assert summary.from_ == "Mallory <mallory@evil.example>"
        assert summary.subject == "hostile"
        assert summary.parse_problem is not None


def test_thousands_of_parts_are_not_parsed_structurally() -> None:
    # Parsed structurally, this input took 4 s a parse on an idle 2-core machine.
    raw = many_parts(16_000, b"Content-Disposition: attachment\r\n\r\nx\r\n")
    summary, content = summarise(raw), read_content(raw)
    assert summary.parse_problem == "TooManyParts"
    assert (content.text, content.attachments) == (None, ())


def test_encoded_words_are_decoded_when_the_summary_comes_from_header_lines() -> None:
    raw = nested(400, "mixed").replace(b"Subject: hostile",
                                       b"Subject: =?utf-8?q?caf=C3=A9?=")
    assert summarise(raw).subject == "café"


def test_a_message_within_the_bounds_is_parsed_as_before() -> None:
    raw = nested(MAX_NESTING // 4, "alternative")
    summary = summarise(raw)
    assert summary.parse_problem is None
    assert summary.snippet == "innermost"
