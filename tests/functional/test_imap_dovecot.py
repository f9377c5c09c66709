"""The same messages APPENDed to a private Dovecot (Debian's dovecot-imapd, started from
its own configuration on the loopback) and to mailpipe; the same FETCHes must answer the
same bytes. Dovecot is the reference: ENVELOPE, BODYSTRUCTURE, sizes and sections are
where IMAP servers differ and clients break."""

from __future__ import annotations

import imaplib
import os
import shutil
from collections.abc import Iterator

import pytest

from tests.dovecot_support import PASSWORD, private_dovecot
from tests.imap_support import running_imap

pytestmark = pytest.mark.skipif(shutil.which("dovecot") is None,
                                reason="dovecot-imapd comes with make test (system-packages)")


def _message(*lines: str | bytes) -> bytes:
    return b"\r\n".join(line if isinstance(line, bytes) else line.encode() for line in lines)


CORPUS = {
    "alternative with an inline image": _message(
        '"Alice Example" <alice@crepes.fr>'.join(["From: ", ""]),
        "To: bob@hamburger.edu, Carol <carol@hamburger.edu>", "Cc: dan@crepes.fr",
        "Subject: =?utf-8?q?Caf=C3=A9_menu?=", "Date: Fri, 27 Nov 2026 10:00:00 +0100",
        "Message-ID: <m1@crepes.fr>", "In-Reply-To: <m0@hamburger.edu>", "MIME-Version: 1.0",
        'Content-Type: multipart/related; boundary="rel"', "", "--rel",
        'Content-Type: multipart/alternative; boundary="alt"', "", "--alt",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable", "", "Caf=C3=A9 menu", "--alt",
        "Content-Type: text/html; charset=utf-8", "",
        '<p>Menu <img src="cid:logo@crepes.fr"></p>', "--alt--", "--rel",
        'Content-Type: image/png; name="logo.png"', "Content-Transfer-Encoding: base64",
        "Content-ID: <logo@crepes.fr>", 'Content-Disposition: inline; filename="logo.png"',
        "", "iVBORw0KGgo=", "--rel--", ""),
    "forwarded message/rfc822": _message(
        "From: bob@hamburger.edu", "To: carol@hamburger.edu", "Subject: Fwd: hello",
        "Date: Fri, 27 Nov 2026 11:00:00 +0000", "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b"', "", "preamble", "--b",
        "Content-Type: text/plain", "", "see below", "--b", "Content-Type: message/rfc822",
        "", "From: alice@crepes.fr", "Subject: hello", "", "original body", "--b--",
        "epilogue", ""),
    "RFC 2231 attachment name": _message(
        "From: alice@crepes.fr", "To: bob@hamburger.edu", "Subject: facture",
        "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="x"', "", "--x",
        "Content-Type: text/plain; charset=us-ascii", "", "ci-joint", "--x",
        "Content-Type: application/pdf; name*=utf-8''facture%20%C3%A9t%C3%A9.pdf",
        "Content-Disposition: attachment; filename*=utf-8''facture%20%C3%A9t%C3%A9.pdf",
        "Content-Transfer-Encoding: base64", "", "JVBERi0xLjQK", "--x--", ""),
    "8-bit and encoded-word headers": _message(
        "From: =?iso-8859-1?q?Andr=E9?= <andre@crepes.fr>", b"To: b\xc3\xb6b <bob@hamburger.edu>",
        b"Subject: caf\xc3\xa9 8-bit", "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit", "", b"d\xc3\xa9j\xc3\xa0 vu", ""),
    "folded headers, no MIME at all": _message(
        "From: Long Name", " <long@crepes.fr>", "Subject: a subject", "\tfolded twice",
        "Reply-To: replies@crepes.fr", "", "line one", "line two", ""),
    "multipart without its boundary": _message(
        "From: <<broken", "To: ;;;", "Subject: no boundary", "Content-Type: multipart/mixed",
        "", "just text, no parts", ""),
}
ITEMS = ("ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.SIZE", "BODY.PEEK[HEADER]",
         "BODY.PEEK[]", "BODY.PEEK[TEXT]", "BODY.PEEK[1]", "BODY.PEEK[2]", "BODY.PEEK[1.MIME]",
         "BODY.PEEK[1.1]", "BODY.PEEK[2.1]", "BINARY.PEEK[1]", "BINARY.SIZE[1]",
         "BINARY.PEEK[1]<0.20>")
# Where mailpipe answers otherwise, on purpose or for now, and why.
ACCEPTED = {
    ("multipart without its boundary", "ENVELOPE"):
        "Dovecot fills addresses it cannot parse with MISSING_MAILBOX and SYNTAX_ERROR "
        "placeholders; mailpipe gives what it can read of them",
    ("folded headers, no MIME at all", "ENVELOPE"):
        "both send the folded subject as a literal; Dovecot makes its line break and tab "
        "one space, mailpipe unfolds as RFC 5322 2.2.3 does (the line break goes, the tab "
        "stays)",
    ("alternative with an inline image", "BINARY.PEEK[1]"):
        "BINARY of a part that is itself a multipart: Dovecot decodes each part inside and "
        "rewrites its Content-Transfer-Encoding header to binary; mailpipe gives the "
        "multipart as stored (RFC 3516 decodes a part by its own transfer encoding, and a "
        "multipart's is 7bit)",
    ("alternative with an inline image", "BINARY.SIZE[1]"):
        "the size of that same answer",
    ("alternative with an inline image", "BINARY.PEEK[1]<0.20>"):
        "the start of that same answer (the same bytes, which Dovecot sends as a literal8)",
    ("multipart without its boundary", "BODY.PEEK[1.MIME]"):
        "a multipart without a boundary has no parts for Dovecot; pymap answers 1.MIME "
        "from the message's own header",
}


@pytest.fixture(scope="module")
def dovecot() -> Iterator[int]:
    with private_dovecot() as reference:
        yield reference.imap_port


def _answers(client: imaplib.IMAP4) -> dict[tuple[str, str], bytes]:
    for raw in CORPUS.values():
        assert client.append("INBOX", None, None, raw)[0] == "OK"
    client.select("INBOX")
    answers = {}
    for number, name in enumerate(CORPUS, start=1):
        for item in ITEMS:
            status, data = client.fetch(str(number), f"({item})")
            assert status == "OK", (name, item)
            answers[(name, item)] = b"".join(
                part if isinstance(part, bytes) else b"".join(part) for part in data)
    return answers


def test_fetch_answers_are_dovecots_byte_for_byte(dovecot: int) -> None:
    reference = imaplib.IMAP4("127.0.0.1", dovecot)
    reference.login(f"differential{os.getpid()}", PASSWORD)
    expected = _answers(reference)
    with running_imap() as imap:
        answered = _answers(imap.logged_in())
    differing = {key for key in expected if expected[key] != answered[key]}
    assert differing == set(ACCEPTED), {
        key: (expected[key][:300], answered[key][:300]) for key in differing ^ set(ACCEPTED)}
