"""BODY and BODYSTRUCTURE (RFC 3501 7.4.2) of a message's index of parts, written into one
list and joined once."""

from __future__ import annotations

import re

from mailcore.domain.mime_limits import MAX_NESTING
from mailcore.imap_view.content_type import MAX_TYPE_TEXT, joined_parameters, read_parameters
from mailcore.imap_view.envelope import ADDRESS_BUDGET, envelope
from mailcore.imap_view.parts import EMPTY_PART, Part
from mailcore.imap_view.strings import NIL, nstring, paren_list, without_comments


def _languages(part: Part) -> bytes:
    """Content-Language as Dovecot writes it: a list of the tags, comments left out."""
    value = part.header(b"content-language")
    if value is None:
        return NIL
    tags = [tag for tag in re.split(rb"[\s,]+", without_comments(value[:MAX_TYPE_TEXT]))
            if tag]
    return b"(" + b" ".join(nstring(tag) for tag in tags) + b")" if tags else NIL


def _parameter_list(parameters: list[tuple[bytes, bytes]]) -> bytes:
    return paren_list([nstring(name) + b" " + nstring(value) for name, value in parameters])


def _disposition(part: Part) -> bytes:
    value = part.header(b"content-disposition")
    if value is None:
        return NIL
    semicolon = value.find(b";")
    kind = value if semicolon < 0 else value[:semicolon]
    parameters = read_parameters(value[semicolon:]) if semicolon >= 0 else []
    return b"(" + nstring(without_comments(kind[:MAX_TYPE_TEXT]).strip()) + b" " + \
        _parameter_list(joined_parameters(parameters)) + b")"


def _opaque(part: Part, extended: bool, out: list[bytes]) -> None:
    out += [b'("application" "octet-stream" NIL NIL NIL ', nstring(
        part.header(b"content-transfer-encoding") or b"7bit"),
        b" %d" % (part.end - part.body_start), b" NIL NIL NIL NIL)" if extended else b")"]


def body_structure(part: Part, extended: bool = True) -> bytes:
    out: list[bytes] = []
    budget = [ADDRESS_BUDGET]  # shared by the envelopes of every enclosed message
    # An explicit stack: nesting never reaches Python's recursion limit, and every part's
    # answer goes into the one list, joined once.
    work: list[Part | bytes] = [part]
    while work:
        current = work.pop()
        if isinstance(current, bytes):
            out.append(current)
            continue
        if current.opaque or current.depth > MAX_NESTING:
            _opaque(current, extended, out)
            continue
        major, minor, parameters = current.written_kind
        if current.is_multipart:
            tail = [b" ", nstring(minor)]
            if extended:
                tail += [b" ", _parameter_list(parameters), b" ", _disposition(current),
                         b" ", _languages(current), b" ",
                         nstring(current.header(b"content-location"))]
            work.append(b"".join(tail) + b")")
            work += reversed(current.children or [EMPTY_PART])
            out.append(b"(")
            continue
        if major.lower() == b"text" and all(name.lower() != b"charset"
                                            for name, _ in parameters):
            parameters = [*parameters, (b"charset", b"us-ascii")]  # RFC 2045 5.2
        out += [b"(", nstring(major), b" ", nstring(minor), b" ",
                _parameter_list(parameters), b" ", nstring(current.header(b"content-id")),
                b" ", nstring(current.header(b"content-description")), b" ",
                nstring(current.header(b"content-transfer-encoding") or b"7bit"),
                b" %d" % (current.end - current.body_start)]
        tail = []
        if extended:
            tail = [b" ", nstring(current.header(b"content-md5")), b" ",
                    _disposition(current), b" ", _languages(current),
                    b" ", nstring(current.header(b"content-location"))]
        if current.is_message:
            enclosed = current.children[0] if current.children else EMPTY_PART
            out += [b" ", envelope(enclosed, budget), b" "]
            work.append(b" %d" % current.body_lines + b"".join(tail) + b")")
            work.append(enclosed)
            continue
        if current.kind[0] == b"text":
            out.append(b" %d" % current.body_lines)
        out += tail
        out.append(b")")
    return b"".join(out)
