"""IMAP on `mailpipe up`: mail accepted over SMTP is read over IMAP, and IMAP and the HTTP
API change one and the same mailbox (flags, moves, APPEND), on the DynamoDB adapter."""

from __future__ import annotations

import imaplib
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Iterator

import pytest

from mailpipe.local.launcher import StackProcess, start_stack
from tests.e2e.api_client import ApiClient, wait_until

pytestmark = pytest.mark.e2e
BOB, PASSWORD = "bob@hamburger.edu", "bob-password"


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    stack = start_stack(["hamburger.edu"], {BOB: PASSWORD})
    yield stack
    stack.stop()


def _send(stack: StackProcess, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as client:
        client.sendmail("alice@crepes.fr", [BOB],
                        f"From: alice@crepes.fr\r\nTo: {BOB}\r\nSubject: {subject}\r\n\r\n"
                        f"hello\r\n".encode())


def _imap(stack: StackProcess) -> imaplib.IMAP4_SSL:
    context = ssl.create_default_context(
        cafile=str(stack.state_dir / "tls" / "cert.pem"))
    context.check_hostname = False
    client = imaplib.IMAP4_SSL("127.0.0.1", stack.imaps_port, ssl_context=context)
    client.login(BOB, PASSWORD)
    return client


def _subjects(client: imaplib.IMAP4_SSL, folder: str) -> list[str]:
    client.select(folder)
    _, fetched = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    return [part[1].decode().strip().removeprefix("Subject: ")
            for part in fetched if isinstance(part, tuple)]


def test_mail_from_smtp_is_read_and_changed_over_imap_and_the_api_alike(
        stack: StackProcess) -> None:
    _send(stack, "first")
    api = ApiClient(stack, BOB, PASSWORD)
    [listed] = wait_until(lambda: api.messages(), 30, what="the message in the Inbox")
    client = _imap(stack)
    assert _subjects(client, "INBOX") == ["first"]

    client.store("1", "+FLAGS", r"(\Flagged)")
    assert wait_until(lambda: "flagged" in api.get(f"/messages/{listed['id']}").json()["flags"],
                      10, what="the IMAP flag in the API")
    _, fetched = client.fetch("1", "(MODSEQ)")
    known = int(re.search(rb"MODSEQ \((\d+)\)", fetched[-1]).group(1))  # type: ignore[union-attr]
    response = api.session.patch(f"{api.api}/messages/{listed['id']}", json={"seen": True},
                                 timeout=30)
    assert response.status_code == 200, response.text
    # CONDSTORE on DynamoDB: the API's change moved the MODSEQ; a STORE conditional on the
    # old one is refused for that message, and CHANGEDSINCE finds it.
    assert client.uid("STORE", "1", f"(UNCHANGEDSINCE {known})", "+FLAGS",
                      r"(\Answered)")[0] == "OK"
    assert client.response("MODIFIED")[1] == [b"1"]
    _, fetched = client.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {known})")
    assert rb"\Seen" in fetched[-1] and rb"\Flagged" in fetched[-1]
    assert rb"\Answered" not in fetched[-1]
    assert int(re.search(rb"MODSEQ \((\d+)\)", fetched[-1]).group(1)) > known  # type: ignore[union-attr]

    assert client.uid("MOVE", "1:*", "Archive")[0] == "OK"
    assert [message["id"] for message in api.messages("Archive")] == [listed["id"]]
    assert api.messages("Inbox") == []

    sent = b"From: bob@hamburger.edu\r\nTo: alice@crepes.fr\r\nSubject: sent copy\r\n\r\nhi\r\n"
    assert client.append("Sent", r"(\Seen)", None, sent)[0] == "OK"
    assert [message["subject"] for message in api.messages("Sent")] == ["sent copy"]
    client.logout()


def test_uids_only_grow_while_parallel_smtp_sessions_fill_a_folder(
        stack: StackProcess) -> None:
    """A client asking UID FETCH <next>:* again and again while eight SMTP sessions send
    to one mailbox sees every message once, and never a UID below one it has seen."""
    client = _imap(stack)
    client.select("INBOX")
    already = len(client.uid("SEARCH", "ALL")[1][0].split())
    sessions, per_session = 8, 10
    errors: list[BaseException] = []

    def send_some(session: int) -> None:
        try:
            for number in range(per_session):
                _send(stack, f"parallel {session}.{number}")
        except Exception as exc:  # the test reports it, after the threads
            errors.append(exc)

    threads = [threading.Thread(target=send_some, args=(n,)) for n in range(sessions)]
    for thread in threads:
        thread.start()
    expected = already + sessions * per_session
    uids: list[int] = []
    deadline = time.monotonic() + 90
    while len(uids) < expected and time.monotonic() < deadline:
        first = uids[-1] + 1 if uids else 1
        _, found = client.uid("FETCH", f"{first}:*", "(UID)")
        for line in found:
            if not isinstance(line, bytes) or b"UID " not in line:
                continue
            uid = int(line.split(b"UID ")[1].split(b")")[0])
            if uid >= first:  # "n:*" also answers the last message when none is >= n
                assert not uids or uid > uids[-1], (uid, uids[-1])
                uids.append(uid)
        time.sleep(0.05)
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(uids) == len(set(uids)) == expected
    client.logout()


def test_idle_tells_of_mail_accepted_over_smtp(stack: StackProcess) -> None:
    client = _imap(stack)
    client.select("INBOX")
    exists = int(client.response("EXISTS")[1][-1] or b"0")
    tag = client._new_tag().decode()
    client.send(f"{tag} IDLE\r\n".encode())
    assert client.readline().startswith(b"+")
    accepted = time.monotonic()
    _send(stack, "while idle")
    line = client.readline()
    waited = time.monotonic() - accepted
    assert line == f"* {exists + 1} EXISTS\r\n".encode()
    # Filing (the queue, the function) and the poll both count here: locally well under
    # the 5 s after filing, so 10 s after SMTP's 250 leaves room for a busy CI.
    assert waited < 10, waited
    client.send(b"DONE\r\n")
    client.logout()
