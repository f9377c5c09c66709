"""The tokens a message is classified by (mailcore.junk.tokens): words, word pairs, the
subject's, links' hosts; from every text part whatever its transfer encoding and charset,
and from the text of HTML only; bounded, and never an exception on any bytes."""

from __future__ import annotations

import base64
import quopri
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailcore.junk.tokens import MAX_TEXT, MAX_TOKENS, MAX_WORD, html_text, message_tokens

HEAD = b"From: Mallory <m@evil.example>\r\nTo: bob@hamburger.edu\r\nMIME-Version: 1.0\r\n"


def _multipart(*parts: bytes, subject: bytes = b"Hello") -> bytes:
    return (HEAD + b"Subject: " + subject + b"\r\nContent-Type: multipart/alternative;"
            b' boundary="b1"\r\n\r\npreamble words\r\n'
            + b"".join(b"--b1\r\n" + part + b"\r\n" for part in parts) + b"--b1--\r\n"
            b"epilogue words\r\n")


def test_words_and_pairs_of_a_plain_message() -> None:
    raw = HEAD + b"Subject: Cheap Watches\r\n\r\nBuy CHEAP watches; fully-licensed\r\n"
    assert message_tokens(raw) == {
        "s:cheap", "s:watches", "s:cheap watches",
        "buy", "cheap", "watches", "fully", "licensed",
        "buy cheap", "cheap watches", "watches fully", "fully licensed"}


def test_words_are_normalised_and_bounded() -> None:
    fullwidth = "".join(chr(ord(letter) - ord("A") + 0xFF21) for letter in "FULLWIDTH")
    body = (fullwidth + " Straße a 2026 1234567 " + "x" * (MAX_WORD + 1) + " end").encode()
    tokens = message_tokens(HEAD + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body)
    assert {"fullwidth", "strasse", "2026", "fullwidth strasse"} <= tokens
    # One letter, long numbers and overlong words are no tokens and break a pair.
    assert not any(token in tokens for token in ("a", "1234567", "x" * (MAX_WORD + 1)))
    assert "strasse 2026" not in tokens and "2026 end" not in tokens and "end" in tokens


def test_encoded_subject_quoted_printable_and_base64_parts() -> None:
    latin = quopri.encodestring("Réduction spéciale\r\n".encode("iso-8859-1"))
    koi8 = base64.encodebytes("Привет мир".encode("koi8-r"))
    raw = _multipart(
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + latin,
        b"Content-Type: text/plain; charset=koi8-r\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + koi8,
        subject=b"=?utf-8?b?" + base64.b64encode("Énorme offre".encode()) + b"?=")
    tokens = message_tokens(raw)
    assert {"s:énorme", "s:offre", "s:énorme offre", "réduction spéciale",
            "привет мир"} <= tokens
    # The preamble and epilogue are not a part anyone reads.
    assert "preamble" not in tokens and "epilogue" not in tokens


def test_html_gives_its_text_and_its_link_hosts() -> None:
    page = (b"<html><head><title>Secret title</title><style>.x{color:red}</style></head>"
            b"<body><!-- hidden comment --><p>Click&nbsp;<b>h&eacute;re</b></p>"
            b'<a HREF="https://Tracker.Example/p?x=1">now</a><SCRIPT>var hidden = 1;</SCRIPT>'
            b"<td>one</td><td>two</td></body></html>")
    raw = _multipart(b"Content-Type: text/html; charset=utf-8\r\n"
                     b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(page))
    tokens = message_tokens(raw)
    assert {"click", "hére", "click hére", "now", "one", "two",
            "url:tracker.example"} <= tokens
    hidden = ("secret", "title", "color", "hidden", "comment", "var", "html", "body", "href",
              "onetwo")
    assert not any(token in tokens for token in hidden)


def test_attachments_are_not_read() -> None:
    raw = (HEAD + b'Subject: x\r\nContent-Type: multipart/mixed; boundary="m"\r\n\r\n'
           b"--m\r\nContent-Type: text/plain\r\n\r\nvisible text\r\n"
           b"--m\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(b"binary words inside") + b"--m--\r\n")
    tokens = message_tokens(raw)
    assert "visible text" in tokens and "binary" not in tokens


def test_links_in_plain_text() -> None:
    tokens = message_tokens(HEAD + b"\r\nsee http://Shop.Example:8080/x and https://a.example.")
    assert {"url:shop.example", "url:a.example"} <= tokens


def test_tokens_and_text_are_bounded() -> None:
    words = " ".join(f"w{index:x}z" for index in range(40_000)).encode()
    started = time.process_time()
    tokens = message_tokens(HEAD + b"\r\n" + words)
    assert len(tokens) == MAX_TOKENS
    # Text past MAX_TEXT characters is not read: its words never show up.
    late = message_tokens(HEAD + b"\r\n" + b"ab " * (MAX_TEXT // 3 + 10) + b"lateword")
    assert "lateword" not in late and "ab" in late
    assert time.process_time() - started < 5.0


@pytest.mark.parametrize("document", [
    "<" * 100_000, "<!--" * 50_000, "<script>" * 50_000, "&" * 100_000,
    "<a href='" + "http://" * 30_000, "<style" + "x" * 100_000, "İ<STYLE>x</style>y",
])
def test_hostile_html_is_linear(document: str) -> None:
    started = time.process_time()
    html_text(document)
    message_tokens(HEAD + b"Content-Type: text/html; charset=utf-8\r\n\r\n" + document.encode())
    assert time.process_time() - started < 2.0


def test_html_text_keeps_offsets_with_letters_that_lower_longer() -> None:
    assert html_text("İstanbul<STYLE>x</style>Ankara")[0].split() == ["İstanbul", "Ankara"]


hostile = st.one_of(
    st.binary(max_size=4000),
    st.builds(lambda charset, encoding, body, subject: (
        HEAD + b"Subject: " + subject + b"\r\nContent-Type: text/html; charset=" + charset
        + b"\r\nContent-Transfer-Encoding: " + encoding + b"\r\n\r\n" + body),
        st.sampled_from([b"utf-8", b"utf-16", b"utf-7", b"idna", b"punycode", b"rot13",
                         b"hex", b"x-unknown", b'"', b"zlib", b"uu"]),
        st.sampled_from([b"base64", b"quoted-printable", b"8bit", b"bogus"]),
        st.binary(max_size=3000),
        st.sampled_from([b"=?utf-16?b?2D3eAA==?=", b"=?idna?q?=FF?=", b"=?x?b?====?=",
                         b"=?utf-8?q?" + b"=" * 500 + b"?=", b"\xff\xfe", b""])),
    st.builds(lambda text: HEAD + b"Content-Type: text/html\r\n\r\n" + text.encode(
        "utf-8", "surrogatepass"), st.text(alphabet="<>!-/=&#;'\" aSsCcRrIiPpTt\u0130\ud800",
                                           max_size=2000)),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=hostile)
def test_hostile_bytes_never_raise(raw: bytes) -> None:
    tokens = message_tokens(raw)
    assert len(tokens) <= MAX_TOKENS
    assert all(isinstance(token, str) and token for token in tokens)


def test_text_that_nfkc_lengthens_is_read_within_the_text_bound() -> None:
    # U+FDFA is 18 characters in NFKC: 300,000 of them (900 KB of a stranger's message)
    # made 5.4 million characters to split, 80 MB at the peak; the bound is MAX_TEXT's.
    import tracemalloc

    raw = (b"From: a@b.example\r\nSubject: hi\r\nContent-Type: text/plain; charset=utf-8"
           b"\r\n\r\n" + "\ufdfa".encode() * 300_000)
    tracemalloc.start()
    try:
        tokens = message_tokens(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "s:hi" in tokens and len(tokens) > 1
    assert peak < 16 * 1024 * 1024
