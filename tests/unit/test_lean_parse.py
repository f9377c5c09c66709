"""A large message is parsed without its large base64 bodies, which are decoded from the raw
bytes when asked for: what is read from it is exactly what the whole parse reads.

Hypothesis builds MIME trees (nested multiparts with boundaries that are prefixes of each
other, bodies that are valid base64, broken base64 or lines that look like delimiters,
CRLF or LF line ends) and, with the thresholds at zero so that every base64 body may be
left out, requires the same summary, content and attachments as the whole parse; so does
the hostile-MIME strategy's structure (tests/unit/test_hostile_mime.py).
"""

from __future__ import annotations

import base64
import os
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailcore.domain.mime_limits import MAX_NESTING, MAX_PARTS
from mailcore.parsing.bounded import attachment_content, read_content, summarise
from mailcore.parsing.lean import lean_parse
from mailcore.parsing.limits import PARSE_LIMITS, ParseLimits
from tests.unit.test_hostile_mime import (
    CHARSETS,
    ENCODINGS,
    MULTIPART_KINDS,
    huge_header,
    many_parts,
    nested,
    nested_rfc822,
    odd_part,
)

# Every base64 body may be left out, and decoded in chunks that meet mid-line.
LEAN_ALWAYS = ParseLimits(lean_parse_from=0, left_out_from=0, decode_chunk=8)


def _everything_read(raw: bytes, limits: ParseLimits = PARSE_LIMITS) -> tuple[object, ...]:
    content = read_content(raw, limits)
    # The first few and one past the end: each is a parse of its own.
    indexes = [*range(min(3, len(content.attachments))), len(content.attachments)]
    return (summarise(raw, limits), content,
            [attachment_content(raw, index, limits) for index in indexes])


def _whole_only(raw: bytes) -> ParseLimits:
    return ParseLimits(lean_parse_from=len(raw) + 1)


def _whole_and_lean(raw: bytes) -> tuple[object, object]:
    return _everything_read(raw, _whole_only(raw)), _everything_read(raw, LEAN_ALWAYS)


def _large_message(linesep: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "alice@crepes.fr", "bob@x.test", "big"
    message.set_content("see the attachments\n" * 100)
    message.add_alternative("<p>see the attachments</p>\n" * 100, subtype="html")
    for number in range(3):
        message.add_attachment(os.urandom(300_000), maintype="application",
                               subtype="octet-stream", filename=f"part{number}.bin")
    return message.as_bytes(policy=message.policy.clone(linesep=linesep))


@pytest.mark.parametrize("linesep", ["\r\n", "\n"])
def test_a_large_message_is_read_the_same_with_its_attachments_left_out(linesep: str) -> None:
    raw = _large_message(linesep)
    # The text, the HTML and the three attachments (issue 25: text bodies too).
    assert len(lean_parse(raw, PARSE_LIMITS).left_out) == 5
    whole = _everything_read(raw)
    assert [attachment.size for attachment in read_content(raw).attachments] == [300_000] * 3
    assert _everything_read(raw, _whole_only(raw)) == whole


def test_base64_the_package_would_decode_with_defects_is_read_by_the_package() -> None:
    raw = _large_message("\r\n")
    # Padding in the middle of the second attachment: strict decoding refuses it.
    start = raw.index(b"part1.bin")
    start = raw.index(b"\r\n\r\n", start) + 4
    raw = raw[:start + 40] + b"==" + raw[start + 42:]
    whole, lean = _whole_and_lean(raw)
    assert lean == whole


def _base64_lines(data: bytes, width: int, eol: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return eol.join(encoded[start:start + width] for start in range(0, len(encoded), width))


@st.composite
def leaves(draw: st.DrawFn, eol: bytes) -> bytes:
    content_type = draw(st.sampled_from([b"application/octet-stream", b"image/png",
                                         b"text/plain", b"message/rfc822", b"audio/x-y",
                                         b"text/html"]))
    if content_type.startswith(b"text/"):
        content_type += draw(st.sampled_from([b"", b"; charset=utf-8", b"; charset=latin-1",
                                              b"; charset=utf-16", b"; charset=x-unknown",
                                              b"; charset*=utf-8''x"]))
    encoding = draw(st.sampled_from([b"base64", b"BASE64 ", b"quoted-printable", b"7bit",
                                     b"8bit", b"x-uuencode"]))
    headers = [b"Content-Type: " + content_type, b"Content-Transfer-Encoding: " + encoding]
    if draw(st.integers(0, 5)) == 0:
        headers = []  # no header lines: text/plain, or in a digest a message
    if draw(st.booleans()):
        headers.append(b"Content-Disposition: attachment; filename=\"a.bin\"")
    if draw(st.booleans()):
        headers.append(b"Content-ID: <part@x>")
    data = draw(st.binary(max_size=200))
    body = draw(st.sampled_from([
        _base64_lines(data, 76, eol),
        _base64_lines(data, 10, eol),  # not a multiple of 4 per line
        _base64_lines(data, 76, eol)[:-1],  # a character short
        b"QUJD" + eol + b"--b" + eol + b"QUJD",  # a line that looks like a delimiter
        b"-" + _base64_lines(data, 76, eol),
        b"!!not base64!!",
        data,
        # Issue 25's shapes, small: empty lines, one-character lines, a long line, a
        # signature, quoted-printable soft breaks and escapes, tags across chunks, line
        # ends that are not the message's, 8-bit text, a trailing empty line.
        eol * draw(st.integers(0, 40)),
        (b"a" + eol) * draw(st.integers(0, 40)),
        b"x" * draw(st.integers(0, 300)),
        b"hello" + eol + b"-- " + eol + b"sig" + eol,
        b"=" + eol + b"caf=C3=A9 =3D" + eol * 2 + (b"=" + eol) * 5 + b"end=",
        b"<p>a <b>b</b> <a href=" + b"x" * 30 + b">c</a>  " + eol + b"<unclosed d e",
        b"a\rb\nc\r\n" + eol,
        "caf\u00e9 \u2603 ".encode() * 20 + b"\xff\xfe" + eol,
        b"x" * 500 + eol + eol,
    ]))
    if draw(st.booleans()):
        headers.append(b"Not a header line")
    if content_type == b"message/rfc822" and draw(st.booleans()):
        # An attached message, its own body a leaf.
        inner = draw(leaves(eol))
        body = b"Subject: inner" + eol + (inner if not inner.startswith(eol) else inner[
            len(eol):])
    return eol.join(headers) + eol + eol + body


@st.composite
def parts(draw: st.DrawFn, eol: bytes, depth: int) -> bytes:
    if depth >= 3 or draw(st.booleans()):
        return draw(leaves(eol))
    boundary = draw(st.sampled_from([b"b", b"b1", b"bb", b"b-x", b"b "]))
    subtype = draw(st.sampled_from([b"mixed", b"related", b"alternative", b"digest"]))
    children = draw(st.lists(parts(eol, depth + 1), max_size=4))
    body = draw(st.sampled_from([b"", b"preamble" + eol]))
    for child in children:
        body += b"--" + boundary + eol + child + eol
    if draw(st.booleans()):
        body += b"--" + boundary + b"--" + eol + draw(st.sampled_from([b"", b"epilogue"]))
    return (b"Content-Type: multipart/" + subtype + b"; boundary=\"" + boundary + b"\""
            + eol + eol + body)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    return (b"From: alice@crepes.fr" + eol + b"To: bob@x.test" + eol + b"Subject: s" + eol
            + b"MIME-Version: 1.0" + eol + draw(parts(eol, 0)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=messages())
def test_any_mime_tree_is_read_the_same_lean_or_whole(raw: bytes) -> None:
    whole, lean = _whole_and_lean(raw)
    assert lean == whole


# The hostile-MIME strategy's trees, with header fields kept under max_header_field: longer
# ones take seconds to parse, and which of two parses meets the wall-clock bound first
# would decide the comparison, not the parse.
structurally_hostile = st.one_of(
    st.builds(nested, st.integers(1, 3 * MAX_NESTING),
              st.sampled_from(MULTIPART_KINDS)),
    st.builds(nested_rfc822, st.integers(1, 3 * MAX_NESTING)),
    st.builds(many_parts, st.integers(1, 3 * MAX_PARTS),
              st.sampled_from([b"\r\n", b"Content-Disposition: attachment\r\n\r\nx\r\n",
                               b"Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\n"])),
    st.builds(huge_header, st.sampled_from([b"To", b"Subject", b"Content-Type", b"X-Junk"]),
              st.sampled_from([b"(", b"\"a", b"a@b,", b"<", b"a(b\"c<", b"\\", b"\x00\xff"]),
              st.integers(1, 1000)),
    st.builds(odd_part, st.sampled_from(CHARSETS), st.sampled_from(ENCODINGS),
              st.binary(max_size=2000), st.binary(min_size=1, max_size=70)),
    st.binary(max_size=5000),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large])
@given(raw=structurally_hostile)
def test_hostile_messages_are_read_the_same_lean_or_whole(raw: bytes) -> None:
    whole, lean = _whole_and_lean(raw)
    assert lean == whole
