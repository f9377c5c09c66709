"""The same messages APPENDed to a private Dovecot (Debian's dovecot-imapd, started from
its own configuration on the loopback) and to mailpipe; the same FETCHes must answer the
same bytes. Dovecot is the reference: ENVELOPE, BODYSTRUCTURE, sizes and sections are
where IMAP servers differ and clients break."""

from __future__ import annotations

import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailpipe.local.launcher import free_port
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
         "BODY.PEEK[1.1]", "BODY.PEEK[2.1]")
# Where mailpipe answers otherwise, on purpose or for now, and why.
ACCEPTED = {
    ("multipart without its boundary", "ENVELOPE"):
        "Dovecot fills addresses it cannot parse with MISSING_MAILBOX and SYNTAX_ERROR "
        "placeholders; mailpipe gives what it can read of them",
    ("folded headers, no MIME at all", "ENVELOPE"):
        "both send the folded subject as a literal; Dovecot makes its line break and tab "
        "one space, mailpipe unfolds as RFC 5322 2.2.3 does (the line break goes, the tab "
        "stays)",
    ("multipart without its boundary", "BODY.PEEK[1.MIME]"):
        "a multipart without a boundary has no parts for Dovecot; pymap answers 1.MIME "
        "from the message's own header",
}


@pytest.fixture(scope="module")
def dovecot() -> Iterator[int]:
    folder = Path(tempfile.mkdtemp(prefix="mailpipe-dovecot-"))
    folder.chmod(0o755)  # its mail processes run as nobody
    home = folder / "home"
    home.mkdir()
    home.chmod(0o777)
    port = free_port()
    config = folder / "dovecot.conf"
    config.write_text(f"""base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
passdb {{
  driver = static
  args = password=pass
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={home}/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
""")
    process = subprocess.Popen(["dovecot", "-c", str(config), "-F"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError((folder / "log").read_text() if (folder / "log").exists()
                                   else "dovecot did not start") from None
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=30)
    shutil.rmtree(folder, ignore_errors=True)


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
    reference.login(f"differential{os.getpid()}", "pass")
    expected = _answers(reference)
    with running_imap() as imap:
        answered = _answers(imap.logged_in())
    differing = {key for key in expected if expected[key] != answered[key]}
    assert differing == set(ACCEPTED), {
        key: (expected[key][:300], answered[key][:300]) for key in differing ^ set(ACCEPTED)}
