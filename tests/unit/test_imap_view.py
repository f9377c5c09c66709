"""The stored IMAP view gives the answers a fresh parse of the raw bytes gives, for ordinary
and hostile messages: what is stored (encode, decode) is what was made, and each answer the
view holds is the raw path's (ENVELOPE, BODY, BODYSTRUCTURE, BODY[HEADER], header field
lists, SEARCH's header values, the part map's offsets)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailcore.domain.mime_limits import MAX_NESTING, MAX_PARTS
from mailcore.imap_view import body_structure, envelope, parts, search_text, sections
from mailcore.imap_view.view import (
    KEPT_FIELDS,
    MAX_KEPT_BYTES,
    MAX_KEPT_LINES,
    MESSAGE,
    MULTIPART,
    OPAQUE,
    decode,
    encode,
    make_view,
)

KEPT = sorted(KEPT_FIELDS)
OTHER_FIELDS = [b"content-disposition", b"content-language", b"content-id", b"received",
                b"x-spam", b"dkim-signature", b"mime-version-not", b"fromage"]

# Pieces of header values, ordinary and hostile: encoded words, groups, quoting, comments,
# brackets, 8-bit (UTF-8 and not), NUL, folding, parameters continued (RFC 2231).
VALUE_PIECES = st.sampled_from([
    b"alice@crepes.fr", b"\"Alice A.\" <alice@crepes.fr>", b"Team: a@b, \"C D\" <c@d>;",
    b"undisclosed-recipients:;", b"=?utf-8?q?caf=C3=A9?=", b"=?utf-8?b?R3LDvMOfZQ==?=",
    b"=?iso-8859-1?q?=E9t=E9?=", b"=?x?q?y?=", b"\xc3\xa9", b"\xff\xfe", b"\x00", b"(", b")",
    b"\"", b"\\", b"<", b">", b",", b":", b";", b"@", b" ", b"\t", b"\r\n ", b"\n\t",
    b"text/plain; charset=utf-8", b"multipart/mixed; boundary=b", b"name*0*=utf-8''%C3%A9",
    b"name*1=\"x\"", b"Fri, 27 Nov 2026 10:00:00 +0100", b"<id@host>", b"1 (Highest)", b"x"])
VALUES = st.one_of(
    st.lists(VALUE_PIECES, max_size=12).map(b"".join),
    # Giant fields: one piece over and over, up to a few hundred kilobytes.
    st.tuples(VALUE_PIECES, st.sampled_from([1000, 30_000])).map(
        lambda pair: pair[0] * pair[1]))


@st.composite
def field_names(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(KEPT + OTHER_FIELDS))
    upper = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return bytes(byte - 32 if up and 97 <= byte <= 122 else byte
                 for byte, up in zip(name, upper, strict=True))


FIELDS = st.lists(st.tuples(field_names(), st.sampled_from([b": ", b":", b" : "]), VALUES),
                  max_size=8)
BODY_LINES = st.lists(st.sampled_from([
    b"body", b"", b"--", b"--b", b"--b--", b"Content-Type: text/html", b"\xc3\xa9t\xc3\xa9",
    b"JVBERi0xLjQK" * 6, b"=C3=A9=", b"From: in the body@x"]), max_size=6)


@dataclass(frozen=True)
class Leaf:
    fields: list[tuple[bytes, bytes, bytes]]
    body: list[bytes]


@dataclass(frozen=True)
class Multipart:
    fields: list[tuple[bytes, bytes, bytes]]
    subtype: bytes
    boundary: bytes
    children: list[object]
    # How it ends: closed, never closed, closed twice, a boundary repeated (an empty part).
    ending: str


@dataclass(frozen=True)
class Enclosed:
    fields: list[tuple[bytes, bytes, bytes]]
    inner: object


BOUNDARIES = st.sampled_from([b"b", b"b1", b"=_x", b"'()+_,-./:=?", b"b" * 70, b"c"])
TREES = st.recursive(
    st.builds(Leaf, FIELDS, BODY_LINES),
    lambda children: st.one_of(
        st.builds(Multipart, FIELDS, st.sampled_from([b"mixed", b"alternative", b"digest",
                                                      b"RELATED"]),
                  BOUNDARIES, st.lists(children, max_size=4),
                  st.sampled_from(["closed", "open", "twice", "repeated"])),
        st.builds(Enclosed, FIELDS, children)),
    max_leaves=10)


def _header(fields: list[tuple[bytes, bytes, bytes]]) -> list[bytes]:
    return [name + colon + value for name, colon, value in fields]


def _lines(node: object) -> list[bytes]:
    if isinstance(node, Multipart):
        lines = [*_header(node.fields),
                 b"Content-Type: multipart/%s; boundary=\"%s\"" % (node.subtype, node.boundary),
                 b"", b"preamble"]
        for child in node.children:
            lines += [b"--" + node.boundary, *_lines(child)]
        if node.ending == "repeated":
            lines += [b"--" + node.boundary, b"--" + node.boundary]
        if node.ending in ("closed", "twice", "repeated"):
            lines.append(b"--" + node.boundary + b"--")
        if node.ending == "twice":
            lines += [b"epilogue", b"--" + node.boundary + b"--"]
        return lines
    if isinstance(node, Enclosed):
        return [*_header(node.fields), b"Content-Type: message/rfc822", b"",
                *_lines(node.inner)]
    assert isinstance(node, Leaf)
    return [*_header(node.fields), b"", *node.body]


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    lines = _lines(draw(TREES))
    if draw(st.booleans()) and b"" in lines:
        lines.remove(b"")  # the message's own blank line gone: no body, or a header only
    ending = draw(st.sampled_from([b"\r\n", b"\n", None]))
    if ending is None:  # bare LF and CRLF mixed, line by line
        breaks = draw(st.lists(st.sampled_from([b"\r\n", b"\n"]), min_size=len(lines),
                               max_size=len(lines)))
        return b"".join(line + eol for line, eol in zip(lines, breaks, strict=True))
    joined = ending.join(lines)
    return joined + ending if draw(st.booleans()) else joined


def _in_case(name: bytes, upper: list[bool]) -> bytes:
    return bytes(byte - 32 if up and 97 <= byte <= 122 else byte
                 for byte, up in zip(name, upper + [False] * len(name), strict=False))


def assert_view_answers_as_raw(raw: bytes, names: list[bytes]) -> None:
    """The view of `raw` survives storage, and answers as the raw path does."""
    view = make_view(raw)
    assert decode(encode(view)) == view
    root = parts.split_message(raw)
    assert view.size == len(raw)
    assert view.envelope == envelope.envelope(parts.split_message(raw))
    assert view.body == body_structure.body_structure(root, extended=False)
    assert view.body_structure == body_structure.body_structure(root, extended=True)
    # BODY[HEADER] as the server answers it (sections.header_fields without names) is the
    # raw bytes up to header_size, which a ranged read serves.
    assert raw[:view.header_size] == sections.header_fields(root, None)
    assert not view.keeps([*names, b"X-Not-Kept"])
    text = search_text.MessageText(raw)
    if not view.complete:
        # Past what a view keeps of a header (MAX_KEPT_LINES, MAX_KEPT_BYTES): no field is
        # answered from it; FETCH reads the header section and SEARCH the bytes.
        assert not view.keeps(names[:1] or [b"From"])
        assert view.header_lines == view.search_fields == ()
        lines = sections.header_fields(root, KEPT)
        searched = [value for name, value in text.headers if name in KEPT_FIELDS]
        assert (len(lines) > MAX_KEPT_BYTES or lines.count(b"\n") > MAX_KEPT_LINES
                or len(searched) > MAX_KEPT_LINES or sum(map(len, searched)) > MAX_KEPT_BYTES)
        return
    assert view.keeps(names)
    assert view.header_fields(names) == sections.header_fields(root, names)
    for name in KEPT:
        assert view.search_values(name) == text.fields(name), name
    walked = list(parts.walk(root))
    assert len(view.parts) == len(walked)
    for entry, part in zip(view.parts, walked, strict=True):
        assert (entry.start, entry.body_start, entry.end, entry.header_break) == (
            part.start, part.body_start, part.end, part.header_break)
        assert entry.children == len(part.children)
        assert bool(entry.flags & MULTIPART) == part.is_multipart
        assert bool(entry.flags & MESSAGE) == part.is_message
        assert bool(entry.flags & OPAQUE) == part.opaque
        assert entry.encoding == part.header(b"content-transfer-encoding")


NAME_SETS = st.tuples(st.lists(st.sampled_from(KEPT), min_size=1, max_size=10, unique=True),
                      st.lists(st.booleans(), max_size=40))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(messages(), NAME_SETS)
def test_the_stored_view_answers_as_a_fresh_parse_of_any_message(raw, name_set):
    """GIVEN a message of any shape (nested, unclosed or repeated boundaries, no blank line,
    bare LF, encoded words, groups, giant and 8-bit fields) WHEN its view is made, stored and
    read back THEN every answer it holds is the raw path's."""
    names, upper = name_set
    assert_view_answers_as_raw(raw, [_in_case(name, upper) for name in names])


def _deep(kind: str, depth: int) -> bytes:
    if kind == "multipart":
        head = b"".join(b"Content-Type: multipart/mixed; boundary=d%d\r\n\r\n--d%d\r\n"
                        % (level, level) for level in range(depth))
        tail = b"".join(b"\r\n--d%d--\r\n" % level for level in reversed(range(depth)))
    else:
        head = b"Subject: level\r\nContent-Type: message/rfc822\r\n\r\n" * depth
        tail = b""
    return b"From: a@b\r\nSubject: deep\r\n" + head + b"\r\ninnermost\r\n" + tail


def _wide(count: int, close: bool = True) -> bytes:
    body = b"".join(b"--w\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64"
                    b"\r\n\r\naGk=\r\n" for _ in range(count))
    return (b"From: a@b\r\nTo: Team: x@y, z@w;\r\nContent-Type: multipart/mixed; "
            b"boundary=w\r\n\r\n" + body + (b"--w--\r\n" if close else b""))


# Shapes hypothesis rarely reaches: past the nesting and part limits, a header of one giant
# field, a message with no body or no blank line, nothing at all, bare LF throughout.
SHAPES = {
    "multipart nested past the limit": _deep("multipart", MAX_NESTING + 20),
    "message/rfc822 nested past the limit": _deep("message", MAX_NESTING + 20),
    "thousands of parts": _wide(MAX_PARTS * 3),
    "thousands of parts, never closed": _wide(2 * MAX_PARTS, close=False),
    "a 1 MB Subject": b"Subject: " + b"=?utf-8?q?caf=C3=A9?= " * 50_000 + b"\r\n\r\nbody",
    "200,000 one-line fields": b"To: a@b\r\n" * 200_000 + b"\r\nbody",
    "no blank line": b"From: a@b\r\nSubject: only a header\r\nTo: c@d",
    "only a blank line": b"\r\n",
    "empty": b"",
    "bare LF": _wide(5).replace(b"\r\n", b"\n"),
    "8-bit header": "From: André <andré@crêpes.fr>\r\nSubject: été\r\n\r\nx".encode()
                    + b"\r\nCc: \xff\xfe\r\n",
    "duplicated fields": b"Subject: one\r\nsubject: two\r\nFROM: a@b\r\nFrom: c@d\r\n\r\n",
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_the_stored_view_answers_as_a_fresh_parse_for_extreme_shapes(name):
    assert_view_answers_as_raw(SHAPES[name], [b"From", b"SUBJECT", b"to", b"cc",
                                              b"Content-Type", b"Message-ID", b"date"])
