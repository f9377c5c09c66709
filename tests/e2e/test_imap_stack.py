"""IMAP on `mailpipe up`: mail accepted over SMTP is read over IMAP, and IMAP and the HTTP
API change one and the same mailbox (flags, moves, APPEND), on the DynamoDB adapter; and
the junk filter (issue 29) learns from IMAP moves, trusts correspondents and junks GTUBE
and blocklisted clients, on the same stack with a private dnsmasq as its DNS."""

from __future__ import annotations

import imaplib
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Iterator

import pytest

from mailcore.domain.junk import GTUBE
from mailpipe.local.launcher import StackProcess, start_stack
from tests.dns_support import Dnsmasq
from tests.e2e.api_client import ApiClient, wait_until
from tests.e2e.junk_stack import (
    BLOCKLIST,
    CAROL,
    CORRESPONDENT,
    DAVE,
    arrived,
    dns_zone,
    send,
    send_each,
    subject_of,
)
from tests.junk_support import message

pytestmark = pytest.mark.e2e
BOB, PASSWORD = "bob@hamburger.edu", "bob-password"


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    # Its own dnsmasq: the junk tests' sender publishes SPF and DMARC, and a blocklist
    # lists 127.0.0.2 (every other name is NXDOMAIN, as the session's empty dnsmasq).
    with Dnsmasq(dns_zone()) as dns:
        stack = start_stack(["hamburger.edu"], {BOB: PASSWORD, CAROL: PASSWORD,
                                                DAVE: PASSWORD},
                            "--dns", dns.address, "--dnsbl", BLOCKLIST)
        yield stack
        stack.stop()


def _send(stack: StackProcess, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as client:
        client.sendmail("alice@crepes.fr", [BOB],
                        f"From: alice@crepes.fr\r\nTo: {BOB}\r\nSubject: {subject}\r\n\r\n"
                        f"hello\r\n".encode())


def _imap(stack: StackProcess, address: str = BOB) -> imaplib.IMAP4_SSL:
    context = ssl.create_default_context(
        cafile=str(stack.state_dir / "tls" / "cert.pem"))
    context.check_hostname = False
    client = imaplib.IMAP4_SSL("127.0.0.1", stack.imaps_port, ssl_context=context)
    client.login(address, PASSWORD)
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


def _uids(client: imaplib.IMAP4_SSL, *criteria: str) -> list[bytes]:
    typ, found = client.uid("SEARCH", *criteria)
    assert typ == "OK", found
    return list(found[0].split())


def _trained(api: ApiClient) -> dict[str, int]:
    response = api.get("/junk-filter")
    assert response.status_code == 200, response.text
    return dict(response.json()["trained"])


def test_an_account_teaches_its_filter_by_moving_mail_and_unteaches_it(
        stack: StackProcess) -> None:
    """Carol moves 22 junk-like messages to Junk and archives 22 others over IMAP; then the
    next junk-like message goes to her Junk (not Dave's, who taught nothing), the next
    ham-like one to her Inbox, and one from a correspondent she wrote to to her Inbox; when
    she takes three lessons back, junk-like mail comes to her Inbox again."""
    carol, dave = ApiClient(stack, CAROL, PASSWORD), ApiClient(stack, DAVE, PASSWORD)
    junk_like = [message(seed, True, to=CAROL) for seed in range(1, 23)]
    ham_like = [message(seed, False, to=CAROL) for seed in range(1, 23)]
    send_each(stack, junk_like + ham_like, [CAROL])
    wait_until(lambda: carol.folder_total("Inbox") == 44, 60, what="44 messages in the Inbox")
    assert _trained(carol) == {"junk": 0, "not_junk": 0, "minimum": 20}

    client = _imap(stack, CAROL)
    client.select("INBOX")
    junk_uids = _uids(client, "HEADER", "Message-ID", ".1@example.net")
    ham_uids = _uids(client, "HEADER", "Message-ID", ".0@example.net")
    assert len(junk_uids) == len(ham_uids) == 22
    assert client.uid("MOVE", b",".join(junk_uids).decode(), "Junk")[0] == "OK"
    assert client.uid("MOVE", b",".join(ham_uids).decode(), "Archive")[0] == "OK"
    # The learner runs from the queue: the moves answered at once, the counts follow.
    wait_until(lambda: _trained(carol) == {"junk": 22, "not_junk": 22, "minimum": 20}, 60,
               what="22 and 22 lessons learned")

    next_junk = message(100, True, to=CAROL)
    send(stack, next_junk, [CAROL, DAVE])  # one message, a verdict for each recipient
    folder, detail = arrived(carol, subject_of(next_junk))
    assert folder == "Junk"
    assert detail["junk"]["junk"] is True
    assert detail["junk"]["decided_by"] == "content"
    assert detail["junk"]["score"] >= 0.95
    folder, detail = arrived(dave, subject_of(next_junk))
    assert (folder, detail["junk"]["junk"]) == ("Inbox", False)
    assert "untrained" in detail["junk"]["reasons"]
    # Over IMAP: Junk is the \Junk special-use folder, and the message is in it.
    _, listed = client.list()
    assert any(isinstance(line, bytes) and rb"\Junk" in line and line.endswith(b"Junk")
               for line in listed), listed
    assert subject_of(next_junk) in _subjects(client, "Junk")

    next_ham = message(100, False, to=CAROL)
    send(stack, next_ham, [CAROL])
    folder, detail = arrived(carol, subject_of(next_ham))
    assert (folder, detail["junk"]["junk"], detail["junk"]["decided_by"]) == (
        "Inbox", False, "content")

    # Carol writes to alice@waffles.be; Alice's answer, in words the filter calls junk,
    # proves its sender (SPF and DMARC pass) and comes to the Inbox on that history.
    answer = carol.post("/messages", {"to": [CORRESPONDENT], "subject": "lunch?",
                                      "text": "shall we?"})
    assert answer.status_code == 202, answer.text
    wait_until(lambda: carol.folder_total("Sent") == 1, 30, what="the Sent copy filed")
    from_alice = message(101, True, sender=CORRESPONDENT, to=CAROL)
    send(stack, from_alice, [CAROL])
    folder, detail = arrived(carol, subject_of(from_alice))
    assert (folder, detail["junk"]["junk"], detail["junk"]["decided_by"]) == (
        "Inbox", False, "history")
    assert f"wrote-to:{CORRESPONDENT}" in detail["junk"]["reasons"]

    # Changing her mind: two trained messages moved out of Junk ("not junk") and one whose
    # $Junk she removes leave 19 junk lessons, under the minimum: content junks nothing.
    client.select("Junk")
    trained_junk = _uids(client, "KEYWORD", "$Junk")
    assert len(trained_junk) == 22  # the filed one has no $Junk: filing never teaches
    assert client.uid("MOVE", b",".join(trained_junk[:2]).decode(), "INBOX")[0] == "OK"
    assert client.uid("STORE", trained_junk[2].decode(), "-FLAGS", "($Junk)")[0] == "OK"
    wait_until(lambda: _trained(carol) == {"junk": 19, "not_junk": 24, "minimum": 20}, 60,
               what="three junk lessons taken back")
    client.logout()
    again = message(102, True, to=CAROL)
    send(stack, again, [CAROL])
    folder, detail = arrived(carol, subject_of(again))
    assert (folder, detail["junk"]["junk"]) == ("Inbox", False)
    assert "untrained" in detail["junk"]["reasons"]


def test_gtube_and_a_listed_client_go_to_junk_a_refused_lookup_does_not(
        stack: StackProcess) -> None:
    dave = ApiClient(stack, DAVE, PASSWORD)
    gtube = message(200, False, to=DAVE, extra=GTUBE + b"\r\n")
    send(stack, gtube, [DAVE])
    folder, detail = arrived(dave, subject_of(gtube))
    assert (folder, detail["junk"]["decided_by"], detail["junk"]["reasons"]) == (
        "Junk", "signal", ["gtube"])

    listed, refused = message(201, False, to=DAVE), message(202, False, to=DAVE)
    send(stack, listed, [DAVE], source="127.0.0.2")
    send(stack, refused, [DAVE], source="127.0.0.3")  # 127.255.255.254: no listing
    folder, detail = arrived(dave, subject_of(listed))
    assert (folder, detail["junk"]["decided_by"], detail["junk"]["reasons"]) == (
        "Junk", "signal", [f"dnsbl:{BLOCKLIST}"])
    folder, detail = arrived(dave, subject_of(refused))
    assert (folder, detail["junk"]["junk"]) == ("Inbox", False)


def test_the_block_and_allow_lists_an_account_saves_decide_before_anything_else_but_signals(
        stack: StackProcess) -> None:
    # GIVEN Dave blocks the domain example.net and waffles.be, but allows one address there
    dave = ApiClient(stack, DAVE, PASSWORD)
    saved = dave.put("/junk-filter", {"allow": [CORRESPONDENT], "junk_days": 30,
                                      "block": ["example.net", "waffles.be"]})
    assert saved.status_code == 200, saved.text
    # WHEN mail comes from a blocked domain, and from the allowed address (proven by SPF
    # and DMARC) on the other
    blocked = message(300, False, to=DAVE)
    allowed = message(301, True, sender=CORRESPONDENT, to=DAVE)
    send(stack, blocked, [DAVE])
    send(stack, allowed, [DAVE])
    # THEN the first is in Junk, however plain its words; the second in the Inbox, however
    # junk-like (an address entry beats a domain entry)
    folder, detail = arrived(dave, subject_of(blocked))
    assert (folder, detail["junk"]["decided_by"], detail["junk"]["reasons"]) == (
        "Junk", "settings", ["blocked:example.net"])
    folder, detail = arrived(dave, subject_of(allowed))
    assert (folder, detail["junk"]["decided_by"], detail["junk"]["reasons"]) == (
        "Inbox", "settings", [f"allowed:{CORRESPONDENT}"])
    assert dave.put("/junk-filter", {"allow": [], "block": [], "junk_days": 30}
                    ).status_code == 200
