"""ENVELOPE and BODYSTRUCTURE from raw bytes: whatever the bytes, an answer, never an
exception, at a cost that grows with the message's size and not with its nesting
(tests/functional/test_imap_dovecot.py checks the answers against Dovecot)."""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailcore.domain.mime_limits import MAX_NESTING
from mailcore.imap_view import addresses as structure_addresses
from mailcore.imap_view import body_structure as structure_body
from mailcore.imap_view import content_type as structure_content_type
from mailcore.imap_view import envelope as structure_envelope
from mailcore.imap_view import fields as structure_fields
from mailcore.imap_view import parts as structure_parts
from mailcore.imap_view import sections as structure_sections
from mailcore.parsing.limits import PARSE_LIMITS

LINES = st.sampled_from([
    b"Content-Type: multipart/mixed; boundary=b", b"Content-Type: message/rfc822",
    b"Content-Type: multipart/digest; boundary=\"b\"", b"Content-Type: text/plain; x=\"\\",
    b"--b", b"--b--", b"", b"From: a <b@c>, \"q\\\"\" <@>", b"Subject: =?x?q?y?=", b" folded",
    b"\xff\xfe", b"Content-Disposition: attachment; filename*=utf-8''%", b"body",
    b"Content-Transfer-Encoding: base64", b"@@@", b"To: ;;;"])


class _Unparseable(Exception):
    pass


def _read_imap(data: bytes, position: int = 0) -> tuple[object, int]:
    """One IMAP value (RFC 3501 9: NIL, number, quoted string, literal, list) from `data`
    at `position`; the value and where it ends. Strict: what a client's parser would
    refuse raises _Unparseable."""
    stack: list[list[object]] = []
    while True:
        if data[position:position + 1] == b"(":
            stack.append([])
            position += 1
            continue
        if data[position:position + 1] == b")" and stack and not stack[-1]:
            value: object = stack.pop()
            position += 1
        elif data[position:position + 1] == b'"':
            match = re.compile(rb'"((?:[^"\\\r\n]|\\["\\])*)"').match(data, position)
            if match is None or any(byte > 0x7F for byte in match.group(1)):
                raise _Unparseable(data[position:position + 40])
            value, position = re.sub(rb"\\(.)", rb"\1", match.group(1)), match.end()
        elif data[position:position + 1] == b"{":
            match = re.compile(rb"\{(\d+)\}\r\n").match(data, position)
            if match is None or match.end() + int(match.group(1)) > len(data):
                raise _Unparseable(data[position:position + 40])
            length = int(match.group(1))
            value, position = data[match.end():match.end() + length], match.end() + length
        else:
            match = re.compile(rb"NIL|\d+").match(data, position)
            if match is None:
                raise _Unparseable(data[position:position + 40])
            value, position = (None if match.group() == b"NIL" else int(match.group()),
                               match.end())
        while True:
            if not stack:
                return value, position
            stack[-1].append(value)
            if data[position:position + 1] == b" ":
                position += 1
                break
            if data[position:position + 1] == b")":
                value, position = stack.pop(), position + 1
                continue
            if isinstance(value, list) and data[position:position + 1] == b"(":
                break  # body parts of a multipart follow each other without a space
            raise _Unparseable(data[position:position + 40])


def _parsed_whole(data: bytes) -> object:
    value, end = _read_imap(data)
    assert end == len(data), data[end:end + 60]
    return value


def _assert_envelope(data: bytes) -> None:
    envelope = _parsed_whole(data)
    assert isinstance(envelope, list) and len(envelope) == 10
    for addresses in envelope[2:8]:
        assert addresses is None or (isinstance(addresses, list) and addresses)
        for address in addresses or []:
            assert isinstance(address, list) and len(address) == 4
            assert all(item is None or isinstance(item, bytes) for item in address)
        # A group's end (all NIL) follows its start (only the mailbox, the group's name).
        starts = 0
        for address in addresses or []:
            if address == [None, None, None, None]:
                assert starts > 0, addresses
                starts -= 1
            elif address[0] is None and address[1] is None and address[3] is None:
                starts += 1


@settings(max_examples=300, deadline=None)
@given(st.lists(LINES, max_size=40), st.lists(st.integers(0, 5), max_size=4))
def test_any_message_gets_a_structure_and_any_section_an_answer(lines, numbers):
    raw = b"\r\n".join(lines)
    part = structure_parts.split_message(raw)
    _assert_envelope(structure_envelope.envelope(part))
    assert isinstance(_parsed_whole(structure_body.body_structure(part)), list)
    assert isinstance(_parsed_whole(structure_body.body_structure(part, extended=False)), list)
    found = structure_sections.section(part, numbers)
    if found is not None:
        structure_sections.decoded_body(found)
        structure_sections.section_body(found)


# Pieces of hostile header values: deep and unbalanced comments, quotes and brackets,
# NULs, 8-bit, long runs, groups and their punctuation, encoded words, folding.
HOSTILE_PIECES = st.sampled_from([
    b"(", b")", b"\"", b"\\", b"<", b">", b"[", b"]", b",", b":", b";", b"@", b".", b"\x00",
    b"\xff", b"\xc3\xa9", b" ", b"\t", b"\r\n ", b"a", b"alice", b"crepes.fr",
    b"=?utf-8?q?caf=C3=A9?=", b"undisclosed-recipients:;", b"Group: a@b, c@d;", b"*0*=",
    b"name*1=", b"'", b"%"])
HOSTILE_VALUE = st.one_of(
    st.lists(HOSTILE_PIECES, max_size=60).map(b"".join),
    st.tuples(HOSTILE_PIECES, st.integers(1, 5000)).map(lambda pair: pair[0] * pair[1]))
HEADER_NAMES = st.sampled_from([
    b"From", b"To", b"Cc", b"Bcc", b"Sender", b"Reply-To", b"Subject", b"Date",
    b"Message-ID", b"In-Reply-To", b"Content-Type", b"Content-Disposition",
    b"Content-Language", b"Content-ID", b"Content-Description"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(HEADER_NAMES, HOSTILE_VALUE), min_size=1, max_size=8),
       st.sampled_from([b"", b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n",
                        b"Content-Type: message/rfc822\r\n\r\n"]))
def test_envelope_and_structure_answer_any_header_with_a_parseable_answer(fields, wrapper):
    """GIVEN hostile header fields, in the message and in a part or enclosed message
    WHEN ENVELOPE and BODYSTRUCTURE are built THEN no exception, and answers a strict IMAP
    parser reads whole."""
    header = b"".join(name + b": " + value + b"\r\n" for name, value in fields)
    raw = wrapper + header + b"\r\nbody\r\n"
    part = structure_parts.split_message(raw)
    _assert_envelope(structure_envelope.envelope(part))
    for extended in (True, False):
        assert isinstance(_parsed_whole(structure_body.body_structure(part, extended)), list)
    for name, _ in fields:
        structure_fields.header_value(part, name)
    assert structure_sections.header_fields(part, [name for name, _ in fields]).endswith(b"\n")


@pytest.mark.parametrize("value", [
    b"(" * 3000, b"(" * 3000 + b")" * 3000 + b" a@b", b"<" * 3000, b">" * 3000,
    b'"' + b"\\" * 5001, b'"' * 3001, b"[" * 3000, b":" * 3000, b";" * 3000,
    b"Group:" * 1000, b"a@b, " * 5000, b"\x00" * 100, b"\xff" * 100,
    b"a" * 200_000, b"(a " * 3000 + b"b@c"])
def test_a_hostile_address_field_is_answered(value):
    """The From: of 3,000 "(" that made the answer recurse in getaddresses, and its
    kin: every address field answers, and parses."""
    raw = b"".join(name + b": " + value + b"\r\n" for name in (
        b"From", b"Sender", b"Reply-To", b"To", b"Cc", b"Bcc")) + b"\r\nbody"
    _assert_envelope(structure_envelope.envelope(structure_parts.split_message(raw)))


def test_groups_are_written_with_their_markers():
    raw = (b"To: undisclosed-recipients:;\r\n"
           b"Cc: Team: a@b, \"C D\" <c@d>;, e@f\r\n\r\n")
    envelope = _parsed_whole(structure_envelope.envelope(structure_parts.split_message(raw)))
    assert isinstance(envelope, list)
    assert envelope[5] == [[None, None, b"undisclosed-recipients", None],
                           [None, None, None, None]]
    assert envelope[6] == [[None, None, b"Team", None], [None, None, b"a", b"b"],
                           [b"C D", None, b"c", b"d"], [None, None, None, None],
                           [None, None, b"e", b"f"]]


def test_rfc2231_continuations_are_joined_as_dovecot_joins_them():
    raw = (b"Content-Type: application/pdf; name*1=\"name.pdf\"; name*0=\"long \"; x=y\r\n"
           b"Content-Disposition: attachment; filename*0*=utf-8''%C3%A9t;"
           b" filename*1=\"e.pdf\"\r\n\r\nbody")
    answer = structure_body.body_structure(structure_parts.split_message(raw))
    assert b'("x" "y" "name" "long name.pdf")' in answer
    assert b'("filename*" "utf-8\'\'%C3%A9te.pdf")' in answer


def test_header_value_is_unfolded_for_any_field():
    raw = b"X-Spam: no\r\nX-Thing: one\r\n two\r\nx-thing: second\r\n\r\nX-Thing: body"
    part = structure_parts.split_message(raw)
    assert structure_fields.header_value(part, b"x-thing") == b"one two"
    assert structure_fields.header_value(part, b"X-Missing") is None


def _nested_multipart(depth: int, size: int) -> bytes:
    head = b"".join(b"Content-Type: multipart/mixed; boundary=level%d_\r\n\r\n--level%d_\r\n"
                    % (level, level) for level in range(depth))
    tail = b"".join(b"\r\n--level%d_--\r\n" % level for level in reversed(range(depth)))
    return _filled(b"From: a@b\r\nSubject: nested\r\n" + head
                   + b"Content-Type: text/plain\r\n\r\n", tail, size)


def _nested_messages(depth: int, size: int) -> bytes:
    head = b"From: a@b\r\nSubject: nested\r\nContent-Type: message/rfc822\r\n\r\n" * depth
    return _filled(head + b"Subject: innermost\r\n\r\n", b"", size)


def _nested_alternately(depth: int, size: int) -> bytes:
    """A multipart holding a message holding a multipart..., each level's bytes after the
    part inside it, so that each level has a body of its own too."""
    head = b"".join(b"Content-Type: multipart/mixed; boundary=l%d_\r\n\r\n--l%d_\r\n"
                    b"Content-Type: message/rfc822\r\n\r\nSubject: level %d\r\n"
                    % (level, level, level) for level in range(depth // 2))
    tail = b"".join(b"\r\n--l%d_\r\n\r\nsecond part\r\n--l%d_--\r\n" % (level, level)
                    for level in reversed(range(depth // 2)))
    return _filled(head + b"\r\n", tail, size)


def _filled(head: bytes, tail: bytes, size: int) -> bytes:
    line = b"x" * 76 + b"\r\n"
    return head + line * ((size - len(head) - len(tail)) // len(line)) + tail


def _traced_peak(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _every_answer(raw: bytes) -> None:
    part = structure_parts.split_message(raw)
    structure_envelope.envelope(part)
    structure_body.body_structure(part)
    structure_body.body_structure(part, extended=False)


SIZE = 2 * 1024 * 1024


@pytest.mark.parametrize("nested", [_nested_multipart, _nested_messages, _nested_alternately])
def test_nesting_costs_no_more_memory_than_a_flat_message(nested):
    """GIVEN a 2 MiB message nested 50 deep (multiparts, messages, or both in turn) and
    one nested 1 deep WHEN every structure answer is built THEN the memory it takes is a
    small fraction of the message either way: no level copies the body it holds (copying
    took 50 times the message's size), so the depth costs nothing the size does not."""
    deep, shallow = nested(50, SIZE), nested(1, SIZE)
    assert abs(len(deep) - len(shallow)) < 1024
    deep_peak = _traced_peak(lambda: _every_answer(deep))
    shallow_peak = _traced_peak(lambda: _every_answer(shallow))
    assert deep_peak < len(deep) // 4, deep_peak
    assert deep_peak < shallow_peak + 512 * 1024, (deep_peak, shallow_peak)


@pytest.mark.parametrize("nested", [_nested_multipart, _nested_messages, _nested_alternately])
def test_a_deeply_nested_message_shows_every_level_then_an_opaque_part(nested):
    raw = nested(2 * MAX_NESTING + 20, 64 * 1024)
    answer = structure_body.body_structure(structure_parts.split_message(raw))
    assert _parsed_whole(answer)
    # Levels 0 to MAX_NESTING shown as what they are, the parts below as opaque ones.
    assert answer.count(b'"mixed"') + answer.count(b'"rfc822"') == MAX_NESTING + 1
    assert answer.count(b'"application" "octet-stream"') in (1, 2)


def test_depth_bound_is_filings():
    assert PARSE_LIMITS.max_nesting is MAX_NESTING


def test_a_section_body_is_the_bytes_between_its_boundaries():
    raw = _nested_multipart(50, 64 * 1024)
    part = structure_parts.split_message(raw)
    innermost = structure_sections.section(part, [1] * 51)
    assert innermost is not None
    assert structure_sections.section_body(innermost) == raw[innermost.body_start:innermost.end]
    assert structure_sections.section_body(innermost).startswith(b"x" * 76 + b"\r\n")
    assert structure_sections.section_body(innermost).endswith(b"x" * 76 + b"\r\n")


def _wide_and_deep(levels: int, siblings: int) -> bytes:
    """`levels` nested multiparts with 70-character boundaries, and inside the innermost
    `siblings` multiparts opened and closed one after another."""
    def boundary(number: int) -> bytes:
        return b"%06d" % number + b"=" * 64

    head = b"".join(b"Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n"
                    % (boundary(level), boundary(level)) for level in range(levels))
    inner = b"".join(b"Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n"
                     b"\r\nx\r\n--%s--\r\n--%s\r\n" % (
                         boundary(1000 + part), boundary(1000 + part),
                         boundary(1000 + part), boundary(levels - 1))
                     for part in range(siblings))
    tail = b"".join(b"\r\n--%s--\r\n" % boundary(level) for level in reversed(range(levels)))
    return head + inner + b"\r\nlast\r\n" + tail


@pytest.mark.parametrize("raw", [
    _nested_multipart(50, 256 * 1024), _nested_messages(50, 256 * 1024),
    _nested_alternately(50, 256 * 1024), _wide_and_deep(99, 440),
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n"
    + b"--x\r\n--\r\n--c\r\n-- b\r\n" * 20000 + b"--b--\r\n"])
def test_python_steps_grow_with_the_parts_not_with_the_lines(raw, monkeypatch):
    """By construction: the scan takes a Python step per part and per delimiter, never per
    line that merely starts with "--" (80,000 of them in the last message), and each open
    multipart's search only goes forward, so it reads the bytes it spans once."""
    steps = []
    searched: dict[int, list[int]] = {}
    next_delimiter = structure_parts._Indexer._next_delimiter

    def counted(self: structure_parts._Indexer, position: int,
                end: int | None = None) -> tuple[int, int] | None:
        steps.append(position)
        if end is None:  # the body scan, whose searches are kept and go forward only
            for frame in self.frames:
                searched.setdefault(id(frame), []).append(max(frame.next, position))
        return next_delimiter(self, position, end)

    checked = []
    delimiter_at = structure_parts._Indexer._delimiter_at

    def checked_line(self: structure_parts._Indexer, newline: int) -> int | None:
        checked.append(newline)
        return delimiter_at(self, newline)

    monkeypatch.setattr(structure_parts._Indexer, "_next_delimiter", counted)
    monkeypatch.setattr(structure_parts._Indexer, "_delimiter_at", checked_line)
    part = structure_parts.split_message(raw)
    parts = sum(1 for _ in structure_parts.walk(part))
    assert len(steps) <= 3 * parts + 2  # a part's header, its delimiter, its close
    assert len(checked) <= structure_parts.CANDIDATES_CHECKED * len(steps)
    assert all(positions == sorted(positions) for positions in searched.values())


def test_reading_addresses_and_parameters_is_bounded_per_field_and_per_answer(monkeypatch):
    """By construction: an address field is read from its first MAX_ADDRESS_FIELD octets,
    one answer reads at most ADDRESS_BUDGET octets of them (each costs Python steps), and
    a field gives at most MAX_PARAMETERS parameters, however large the hostile fields."""
    read = []
    addresses = structure_envelope.addresses

    def counted(value: bytes) -> list[structure_addresses.Address]:
        read.append(len(value))
        return addresses(value)

    monkeypatch.setattr(structure_envelope, "addresses", counted)
    level = (b"To: " + b"a@b, " * 30_000 + b"\r\nContent-Type: message/rfc822; "
             + b"p=v; " * 10_000 + b"\r\n\r\n")
    part = structure_parts.split_message(level * 40 + b"body")
    assert _parsed_whole(structure_body.body_structure(part))
    assert read and max(read) <= structure_envelope.MAX_ADDRESS_FIELD
    assert sum(read) <= structure_envelope.ADDRESS_BUDGET
    assert len(part.kind[2]) == structure_content_type.MAX_PARAMETERS
