"""Mail that got 250 is filed and readable whatever its shape, within the functions'
MemorySize (issue 25, item 13): the local runtime kills a worker past the template's
512 MB as Lambda does, and 20 MiB of empty or one-character lines took file_message to
743-940 MiB when the email package was given the whole body."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator

import pytest

from mailpipe.local.launcher import StackProcess, start_stack
from tests.e2e.api_client import ApiClient

pytestmark = pytest.mark.e2e

BOB, PASSWORD = "bob@hamburger.edu", "bob-password"
SIZE = 20 * 1024 * 1024


def _message(subject: str, content_type: str, unit: bytes, last: bytes) -> bytes:
    head = (f"From: Alice <alice@crepes.fr>\r\nTo: {BOB}\r\nSubject: {subject}\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n").encode()
    return head + unit * ((SIZE - len(head) - len(last)) // len(unit)) + last


SHAPES = {
    "empty lines": (_message("empty lines", "text/plain", b"\r\n", b"the end\r\n"), "the end"),
    "one-character lines": (_message("one-character lines", "text/plain", b"a\r\n", b""),
                            ("a " * 100)[:200]),
    "999 parts of one-character lines": (
        _message("999 parts", 'multipart/mixed; boundary="b"',
                 b"--b\r\n\r\n" + b"a\r\n" * 7000 + b"\r\n", b"--b--\r\n"),
        ("a " * 100)[:200]),
}


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    stack = start_stack(["hamburger.edu"], {BOB: PASSWORD})
    yield stack
    if stack.process.poll() is None:
        stack.process.kill()


def test_every_shape_that_got_250_is_filed_and_shown(stack: StackProcess) -> None:
    for raw, _ in SHAPES.values():
        with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=120) as client:
            client.sendmail("alice@crepes.fr", [BOB], raw)  # raises unless 250

    bob = ApiClient(stack, BOB, PASSWORD)
    listed = {summary["subject"]: summary for summary in bob.wait_for("Inbox", len(SHAPES),
                                                                      timeout=120)}
    for name, (raw, snippet) in SHAPES.items():
        summary = listed[raw.split(b"Subject: ")[1].split(b"\r\n")[0].decode()]
        assert summary["snippet"] == snippet, name
        shown = bob.get(f"/messages/{summary['id']}")
        assert shown.status_code == 200, (name, shown.text[:300])
        assert shown.json()["subject"] == summary["subject"]
        downloaded = bob.get(f"/messages/{summary['id']}/raw", allow_redirects=True)
        assert downloaded.status_code == 200
        assert downloaded.content.endswith(raw[raw.index(b"MIME-Version"):]), name
    assert not [line for line in stack.output if "OutOfMemory" in line]
