"""ENVELOPE and BODYSTRUCTURE from raw bytes: whatever the bytes, an answer, never an
exception (tests/functional/test_imap_dovecot.py checks the answers against Dovecot)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_imap import structure

LINES = st.sampled_from([
    b"Content-Type: multipart/mixed; boundary=b", b"Content-Type: message/rfc822",
    b"Content-Type: multipart/digest; boundary=\"b\"", b"Content-Type: text/plain; x=\"\\",
    b"--b", b"--b--", b"", b"From: a <b@c>, \"q\\\"\" <@>", b"Subject: =?x?q?y?=", b" folded",
    b"\xff\xfe", b"Content-Disposition: attachment; filename*=utf-8''%", b"body",
    b"Content-Transfer-Encoding: base64", b"@@@", b"To: ;;;"])


@settings(max_examples=300, deadline=None)
@given(st.lists(LINES, max_size=40), st.lists(st.integers(0, 5), max_size=4))
def test_any_message_gets_a_structure_and_any_section_an_answer(lines, numbers):
    raw = b"\r\n".join(lines)
    part = structure.split_message(raw)
    assert structure.envelope(part).startswith(b"(")
    assert structure.body_structure(part).startswith(b"(")
    assert structure.body_structure(part, extended=False).startswith(b"(")
    found = structure.section(part, numbers)
    if found is not None:
        structure.decoded_body(found)


def test_a_deeply_nested_message_is_answered_without_recursion_error():
    raw = b"Content-Type: message/rfc822\r\n\r\n" * 2000 + b"body"
    assert structure.body_structure(structure.split_message(raw)).startswith(b"(")
