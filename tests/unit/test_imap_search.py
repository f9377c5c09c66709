"""What SEARCH reads of a message (mailcore/imap_view/search_text.py), on any bytes a sender
can write: it never raises (an error there would fail the command), and it reads what Dovecot
reads."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailcore.domain.mime_limits import MAX_NESTING
from mailcore.imap_view.search_text import (
    MAX_HEAD_FIELDS,
    MessageText,
    addresses,
    body_text,
    decode_words,
    fold,
    parts,
)

PIECES = st.sampled_from([b"(", b")", b"<", b">", b'"', b"\\", b",", b":", b";", b"@", b"=?",
                          b"?=", b"=?utf-8?q?", b"=?x?b?", b"\r\n", b"\r\n\r\n", b"\n", b"--b",
                          b"--b--", b"Content-Type: multipart/mixed; boundary=b",
                          b"Content-Type: message/rfc822", b"Content-Transfer-Encoding: base64",
                          b"Content-Transfer-Encoding: quoted-printable", b"=C3=A9", b"\xff",
                          b"Subject: ", b"From: ", b"Date: ", b"charset=utf-16", b"charset=idna"])
MESSAGES = st.lists(PIECES | st.binary(max_size=8), max_size=60).map(b"".join)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(raw=MESSAGES)
def test_any_message_is_read_without_an_error(raw: bytes) -> None:
    text = MessageText(raw)
    assert isinstance(text.sent_on.year, int)
    assert all(isinstance(body, str) for body in text.bodies)
    assert all(isinstance(line, str) for line in text.header_lines)
    for _name, value in text.headers:
        decode_words(addresses(value.decode("utf-8", "replace")))
    for part in parts(raw):
        body_text(part)


def test_comments_nested_past_any_recursion_limit_are_left_out() -> None:
    assert addresses("(" * 100_000 + "x@crepes.fr") == ""
    assert addresses("(a) Alice (b) <alice@crepes.fr> (c), bob@hamburger.edu") \
        == "Alice <alice@crepes.fr>, <bob@hamburger.edu>"


def test_addresses_are_written_as_dovecot_writes_them() -> None:
    assert addresses('"Alice Example" <alice@crepes.fr>') == '"Alice Example" <alice@crepes.fr>'
    assert addresses("Team: a@x.org, B <b@y.org>;, c@z") \
        == "Team: <a@x.org>, B <b@y.org>;, <c@z>"
    assert addresses("undisclosed-recipients:;") == "undisclosed-recipients:;"
    assert decode_words(addresses("=?iso-8859-1?q?Andr=E9?= <andre@crepes.fr>")) \
        == "André <andre@crepes.fr>"


def test_encoded_words_are_decoded_and_unknown_charsets_left_out() -> None:
    assert decode_words("=?utf-8?q?a?= =?utf-8?b?w6k=?= c") == "aé c"
    assert decode_words("x =?x-unknown?q?abc?= y") == "x  y"
    assert decode_words("=?utf-8?q?broken=ZZ?=") == "broken=ZZ"


def test_letter_case_and_accents_compare_as_dovecot_compares_them() -> None:
    assert fold("cafe") in fold("CAFÉ crème")
    assert fold("straße") in fold("Straße") and fold("strasse") not in fold("Straße")


def test_a_multipart_nested_past_the_bound_is_read_as_one_body() -> None:
    depth = 500
    raw = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n)
                   for n in range(depth)) + b"\r\ninnermost\r\n"
    text = MessageText(raw)
    assert any("innermost" in body for body in text.bodies)
    assert len(text.parts) <= MAX_NESTING + 1  # filing's bound, then one body


def test_a_header_of_millions_of_fields_is_read_to_a_bound() -> None:
    raw = b"Subject: first\r\n" + b"a:\r\n" * 2_000_000 + b"\r\nthe body"
    text = MessageText(raw)
    assert len(text.headers) <= MAX_HEAD_FIELDS
    assert text.fields(b"subject") == [b"first"]
    assert text.bodies == ["the body"]
