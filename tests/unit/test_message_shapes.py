"""Reading a message takes memory in proportion to its size whatever its shape (issue 25,
item 13): the email package keeps a str per line, so 20 MiB of empty or one-character
lines took file_message to 743-940 MiB. Each shape is read here at 8 MiB (large enough
to be read lean), and what summarise, read_content and attachment_content allocate at
their peak (tracemalloc: deterministic, unlike RSS) must stay under half the message's
size plus a constant; what they read must be what the message says.
"""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailcore.domain import message as message_module
from mailcore.domain.message import SHOWN_TEXT, SNIPPET_LENGTH
from mailcore.parsing.bounded import attachment_content, read_content, summarise
from mailcore.parsing.limits import ParseLimits

SIZE = 8 * 1024 * 1024
# Beyond the raw bytes: at most half the message, plus what is bounded whatever the size
# (the header lines read for display, max_header_block, and the text shown, SHOWN_TEXT).
ALLOWED_EXTRA = SIZE // 2 + 4 * 1024 * 1024
MIXED = 'multipart/mixed; boundary="b"'
# Tracing every allocation slows parsing several times over; this is about memory, and the
# parse must not end on the clock instead of being read.
NO_CLOCK = ParseLimits(parse_seconds=600.0)


def _header(content_type: str = "text/plain", extra: str = "") -> bytes:
    return ("From: Alice <alice@crepes.fr>\r\nTo: bob@hamburger.edu\r\nSubject: shape\r\n"
            f"MIME-Version: 1.0\r\n{extra}Content-Type: {content_type}\r\n\r\n").encode()


def _filled(head: bytes, unit: bytes, tail: bytes = b"") -> bytes:
    return head + unit * ((SIZE - len(head) - len(tail)) // len(unit)) + tail


def _parts(count: int, line: bytes) -> bytes:
    head = _header(MIXED)
    part = b"--b\r\nContent-Type: text/plain\r\n\r\n"
    lines = (SIZE - len(head)) // count // len(line)
    return head + (part + line * lines + b"\r\n") * count + b"--b--\r\n"


def _nested(levels: int, kind: str, unit: bytes) -> bytes:
    opening, closing = b"", b""
    if kind == "message":  # attached to a message of its own
        opening = (b'Content-Type: multipart/mixed; boundary="top"\r\n\r\n--top\r\n\r\n'
                   b"see the attached message\r\n--top\r\n")
        closing = b"\r\n--top--\r\n"
    for level in range(levels):
        if kind == "multipart":
            opening += (f'Content-Type: multipart/mixed; boundary="n{level}"\r\n\r\n'
                        f"--n{level}\r\n").encode()
            closing = f"\r\n--n{level}--\r\n".encode() + closing
        else:
            opening += b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n"
    head = (b"From: Alice <alice@crepes.fr>\r\nSubject: shape\r\nMIME-Version: 1.0\r\n"
            + opening + b"Content-Type: text/plain\r\n\r\n")
    return _filled(head, unit, b"last" + closing)


@dataclass(frozen=True)
class Shape:
    raw: Callable[[], bytes]
    snippet: str
    text: Callable[[bytes], str | None]  # what read_content shows, from the raw message
    attachments: int = 0


def _body_text(raw: bytes) -> str:
    return raw.partition(b"\r\n\r\n")[2].decode()[:SHOWN_TEXT]


SHAPES = {
    "empty lines": Shape(lambda: _filled(_header(), b"\r\n"), "", _body_text),
    # The snippet is read past a flood of white space, as far as it needs and no further.
    "empty lines, then a word": Shape(lambda: _filled(_header(), b"\r\n", b"hello\r\n"),
                                      "hello", _body_text),
    "one-character lines": Shape(lambda: _filled(_header(), b"a\r\n"),
                                 ("a " * 100)[:200], _body_text),
    "one line": Shape(lambda: _filled(_header(), b"x", b"\r\n"), "x" * 200, _body_text),
    "only line ends, no header": Shape(lambda: b"\r\n" * (SIZE // 2), "",
                                       lambda raw: ("\r\n" * (SIZE // 2 - 1))[:SHOWN_TEXT]),
    "quoted-printable soft breaks": Shape(
        lambda: _filled(_header("text/plain; charset=utf-8",
                                "Content-Transfer-Encoding: quoted-printable\r\n"),
                        b"=\r\n", b"caf=C3=A9 ok"),
        "café ok", lambda raw: "café ok"),
    "base64 text of empty lines": Shape(
        lambda: _filled(_header("text/plain", "Content-Transfer-Encoding: base64\r\n"),
                        b"DQoNCg0KDQoNCg0KDQoNCg0KDQoNCg0KDQoNCg0KDQoNCg0KDQoNCg0KDQoNCg0K\r\n"),
        "", lambda raw: ("\r\n" * SHOWN_TEXT)[:SHOWN_TEXT]),
    "HTML with a tag never closed": Shape(
        lambda: _filled(_header("text/html") + b"<", b"x "), "<" + ("x " * 100)[:199],
        lambda raw: None),
    "HTML of empty elements": Shape(
        lambda: _filled(_header("text/html; charset=utf-8"), b"<b></b>\r\n",
                        b"<p>the end</p>"),
        "the end", lambda raw: None),
    "999 parts of one-character lines": Shape(lambda: _parts(999, b"a\r\n"),
                                              ("a " * 100)[:200], lambda raw: "a\r\n" * (
                                                  (SIZE - len(_header(MIXED))) // 999 // 3),
                                              attachments=998),
    "95 nested multiparts of empty lines": Shape(
        lambda: _nested(95, "multipart", b"\r\n"), "last",
        lambda raw: ("\r\n" * SIZE)[:SHOWN_TEXT], attachments=1),
    "95 nested messages of one-character lines": Shape(
        lambda: _nested(95, "message", b"a\r\n"), "see the attached message",
        lambda raw: "see the attached message", attachments=1),
}


def _traced_peak(read: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = read()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", list(SHAPES))
def test_every_shape_is_summarised_within_its_size(name: str) -> None:
    shape = SHAPES[name]
    raw = shape.raw()

    summary, peak = _traced_peak(lambda: summarise(raw, NO_CLOCK))

    assert peak < ALLOWED_EXTRA, f"{peak / 2**20:.0f} MiB for a {len(raw) / 2**20:.0f} MiB message"
    assert summary.snippet == shape.snippet
    assert summary.has_attachments is bool(shape.attachments)
    if name.startswith("only line ends"):
        assert summary.parse_problem == "NoHeaders"
    else:
        assert summary.parse_problem is None
        assert summary.subject == "shape"
        assert summary.from_ == "Alice <alice@crepes.fr>"


@pytest.mark.parametrize("name", list(SHAPES))
def test_every_shape_is_shown_within_its_size(name: str) -> None:
    shape = SHAPES[name]
    raw = shape.raw()

    content, peak = _traced_peak(lambda: read_content(raw, NO_CLOCK))

    assert peak < ALLOWED_EXTRA, f"{peak / 2**20:.0f} MiB for a {len(raw) / 2**20:.0f} MiB message"
    expected = shape.text(raw)
    if expected is None:  # an HTML body, shown up to its bound
        assert content.text is None
        assert content.html == _body_text(raw)
    else:
        assert content.text == expected
    assert len(content.attachments) == shape.attachments


def test_the_text_shown_stops_at_its_bound_and_the_rest_stays_in_the_raw_message() -> None:
    raw = _filled(_header(), b"line\r\n")

    content = read_content(raw, NO_CLOCK)

    assert content.text == raw.partition(b"\r\n\r\n")[2].decode()[:SHOWN_TEXT]
    assert len(content.text) == SHOWN_TEXT < len(raw)


@pytest.mark.parametrize("name", ["999 parts of one-character lines",
                                  "95 nested messages of one-character lines"])
def test_attachments_of_every_shape_are_sized_and_read_within_their_size(name: str) -> None:
    raw = SHAPES[name].raw()
    [*_, last] = read_content(raw, NO_CLOCK).attachments

    attachment, peak = _traced_peak(lambda: attachment_content(raw, last.index, NO_CLOCK))

    assert attachment is not None
    assert len(attachment.data) == last.size > 0
    assert peak < ALLOWED_EXTRA + last.size


@given(html=st.text(alphabet="<>a \n", max_size=60),
       cuts=st.lists(st.integers(0, 60), max_size=8))
def test_tags_are_removed_piece_by_piece_as_from_the_whole(html: str, cuts: list[int]) -> None:
    edges = sorted({0, len(html), *(cut for cut in cuts if cut < len(html))})
    pieces = [html[start:end] for start, end in itertools.pairwise(edges)]

    assert "".join(message_module._without_tags(pieces)) == message_module._TAG.sub(" ", html)
    assert (message_module._folded_head(pieces)
            == message_module._SPACE.sub(" ", html).strip()[:SNIPPET_LENGTH])
