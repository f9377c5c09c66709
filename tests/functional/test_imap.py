"""The IMAP server with Python's imaplib as the client, on the in-memory mailboxes (the
same ports the API uses; tests/e2e/test_imap_stack.py runs it against the local stack)."""

from __future__ import annotations

import base64
import imaplib
import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from edge.imap.config import ImapLimits
from mailcore.adapters.memory.login_throttle import InMemoryLoginThrottle
from mailcore.adapters.memory.mailbox import InMemoryMailboxRepository
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import StoredMessage
from mailcore.errors import MessageNotFound
from mailcore.parsing.bounded import summarise
from tests.edge_support import proxy_v2_header
from tests.imap_support import ACCOUNTS, RunningImap, running_imap

BOB, CAROL = "bob@hamburger.edu", "carol@hamburger.edu"
RAW = (b"From: Alice <alice@crepes.fr>\r\nTo: bob@hamburger.edu\r\nSubject: Bonjour\r\n"
       b"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@crepes.fr>\r\n\r\nSalut !\r\n")


def _file(imap: RunningImap, account: str = BOB, folder: str = "Inbox",
          raw: bytes = RAW) -> StoredMessage:
    """A message filed as the filing function files one, straight into the mailbox."""
    storage = imap.storage
    message_id = new_message_id()
    key = storage.store.appended_key(message_id)
    storage.store.put_object(key, raw, "message/rfc822")
    storage.references.hold(key, 1)
    message = StoredMessage(account=account, message_id=message_id, folder=folder,
                            received_at=datetime.now(UTC), raw_key=key, size=len(raw),
                            summary=summarise(raw), accepted_id=message_id)
    storage.mailboxes.file(message)
    return storage.mailboxes.get(account, message_id)


def _code(response: list[bytes | None]) -> str:
    return b" ".join(part for part in response if isinstance(part, bytes)).decode()


def test_the_starttls_port_refuses_passwords_before_tls() -> None:
    with running_imap() as imap:
        client = imaplib.IMAP4("127.0.0.1", imap.imap_port)
        assert {"STARTTLS", "LOGINDISABLED"} <= set(client.capabilities)
        assert not any(name.startswith("AUTH=") for name in client.capabilities)
        with pytest.raises(imaplib.IMAP4.error):
            client.login(BOB, ACCOUNTS[BOB])
        client.starttls(ssl_context=imap.client_tls())
        assert "AUTH=PLAIN" in client.capabilities
        assert "LOGINDISABLED" not in client.capabilities
        assert client.login(BOB, ACCOUNTS[BOB])[0] == "OK"
        capabilities = set(client.capability()[1][0].decode().split())
        assert {"UIDPLUS", "MOVE", "IDLE", "LITERAL+", "CHILDREN", "ID"} <= capabilities
        assert any(name.startswith("APPENDLIMIT=") for name in capabilities)
        client.logout()


def test_wrong_passwords_lock_the_address_out_as_on_smtp_and_the_api() -> None:
    with running_imap() as imap:
        for _ in range(5):
            client = imaplib.IMAP4_SSL("127.0.0.1", imap.imaps_port,
                                       ssl_context=imap.client_tls())
            with pytest.raises(imaplib.IMAP4.error):
                client.login(BOB, "wrong")
            client.logout()
        client = imaplib.IMAP4_SSL("127.0.0.1", imap.imaps_port, ssl_context=imap.client_tls())
        with pytest.raises(imaplib.IMAP4.error, match="too many failed logins"):
            client.login(BOB, ACCOUNTS[BOB])
        assert imap.logged_in(CAROL).noop()[0] == "OK"


def test_role_folders_are_listed_with_their_special_use() -> None:
    with running_imap() as imap:
        client = imap.logged_in()
        listed = {line.decode().rsplit(" ", 1)[-1]: line.decode() for line in client.list()[1]}
        assert set(listed) == {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}
        for name in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
            assert f"\\{name}" in listed[name]
        assert client.select("Trash")[0] == "OK"  # usable before its first message


def test_append_select_fetch_and_flags_are_the_mailboxs_own() -> None:
    with running_imap() as imap:
        client = imap.logged_in()
        status, response = client.append("Sent", r"(\Seen)", None, RAW)
        assert status == "OK"
        uid_validity, uid = re.search(r"APPENDUID (\d+) (\d+)", _code(response)).groups()
        sent = imap.storage.mailboxes.folder_named(BOB, "Sent")
        assert (int(uid_validity), int(uid)) == (sent.uid_validity, 1)

        assert client.select("Sent") == ("OK", [b"1"])
        assert client.response("UIDVALIDITY")[1] == [uid_validity.encode()]
        _, fetched = client.uid("FETCH", "1", "(FLAGS RFC822.SIZE BODY.PEEK[])")
        assert fetched[0][1] == RAW
        assert rb"\Seen" in fetched[0][0] and f"RFC822.SIZE {len(RAW)}".encode() in fetched[0][0]

        client.uid("STORE", "1", "+FLAGS", r"(\Flagged $Junk)")
        [stored] = imap.storage.mailboxes.list_folder(BOB, "Sent", 10, None).messages
        assert stored.flags == frozenset({"seen", "flagged", "$Junk"})  # what the API shows
        client.uid("STORE", "1", "-FLAGS", r"(\Seen)")
        assert imap.storage.mailboxes.folder_named(BOB, "Sent").unread == 1


def test_changes_made_elsewhere_reach_a_selected_client() -> None:
    with running_imap() as imap:
        first = _file(imap)
        client = imap.logged_in()
        client.select("INBOX")
        imap.storage.mailboxes.update(BOB, first.message_id,
                                      lambda m: replace(m, flags=m.flags | {"seen"}))
        second = _file(imap)
        client.noop()
        assert client.response("EXISTS")[1][-1] == b"2"
        # The NOOP's untagged answer told of the new flag too: imaplib keeps it.
        assert client.response("FETCH")[1] == [b"1 (FLAGS (\\Seen))", b"2 (FLAGS ())"]
        _, fetched = client.fetch("1:*", "(UID FLAGS)")
        assert fetched == [f"1 (UID {first.uid} FLAGS (\\Seen))".encode(),
                           f"2 (UID {second.uid} FLAGS ())".encode()]


def test_move_and_copy_answer_with_the_destinations_uids() -> None:
    with running_imap() as imap:
        for _ in range(3):
            _file(imap)
        client = imap.logged_in()
        assert client.create("Projects")[0] == "OK"
        client.select("INBOX")
        projects = imap.storage.mailboxes.folder_named(BOB, "Projects")
        assert client.uid("COPY", "1", "Projects")[0] == "OK"
        assert client.response("COPYUID")[1] == [f"{projects.uid_validity} 1 1".encode()]
        assert client.uid("MOVE", "2:3", "Projects")[0] == "OK"
        assert client.response("COPYUID")[1] == [
            f"{projects.uid_validity} 2:3 2:3".encode()]
        projects = imap.storage.mailboxes.folder_named(BOB, "Projects")
        assert [entry.uid for entry in imap.storage.mailboxes.list_by_uid(
            BOB, projects.id, 1, 10)] == [1, 2, 3]
        assert imap.storage.mailboxes.folder_named(BOB, "Inbox").total == 1
        client.select("Projects")
        _, fetched = client.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert fetched[0][1].strip() == b"Subject: Bonjour"


def test_expunge_deletes_for_good_and_lets_the_bytes_go() -> None:
    store = InMemoryMessageStore()
    with running_imap(store=store) as imap:
        kept, gone = _file(imap), _file(imap)
        client = imap.logged_in()
        client.select("INBOX")
        client.uid("STORE", str(gone.uid), "+FLAGS", r"(\Deleted)")
        assert client.expunge() == ("OK", [b"2"])
        with pytest.raises(MessageNotFound):
            imap.storage.mailboxes.get(BOB, gone.message_id)
        assert not store.exists(gone.raw_key) and store.exists(kept.raw_key)


def test_another_accounts_folders_cannot_be_seen_whatever_the_name() -> None:
    with running_imap() as imap:
        carol = imap.logged_in(CAROL)
        carol.create("Private")
        carol.append("Private", None, None, RAW)
        bob = imap.logged_in()
        listed = b" ".join(bob.list()[1]).decode()
        assert "Private" not in listed
        for name in (b"Private", b"../carol@hamburger.edu/Private", b"%", b"*", b"/Private",
                     b"&AMk-t&AOk-", "Été".encode()):
            status, _ = bob.select(b'"' + name + b'"')
            assert status in ("NO", "BAD"), name
        assert bob.status("Private", "(MESSAGES)")[0] == "NO"


def test_folders_are_created_renamed_and_deleted_with_their_messages() -> None:
    with running_imap() as imap:
        client = imap.logged_in()
        assert client.create("Work")[0] == "OK"
        assert client.create("Work")[0] == "NO"
        assert client.create("Work/2026")[0] == "OK"
        client.append("Work/2026", None, None, RAW)
        assert client.rename("Work", "Jobs")[0] == "OK"
        assert client.select("Jobs/2026") == ("OK", [b"1"])
        assert client.rename("INBOX", "Elsewhere")[0] == "NO"
        assert client.delete("Trash")[0] == "NO"
        client.close()
        assert client.delete("Jobs/2026")[0] == "OK"
        assert imap.storage.mailboxes.folder_named(BOB, "Jobs").total == 0
        names = " ".join(line.decode() for line in client.list()[1])
        assert "Jobs/2026" not in names and "Jobs" in names


def test_idle_tells_of_new_mail_within_seconds() -> None:
    with running_imap() as imap:
        client = imap.logged_in()
        client.select("INBOX")
        tag = client._new_tag().decode()
        client.send(f"{tag} IDLE\r\n".encode())
        assert client.readline().startswith(b"+")
        threading.Timer(0.5, _file, args=(imap,)).start()
        started = time.monotonic()
        line = client.readline()
        assert line == b"* 1 EXISTS\r\n"
        assert time.monotonic() - started < 5
        client.send(b"DONE\r\n")
        while not (line := client.readline()).startswith(tag.encode()):
            assert line.startswith(b"* ")
        assert line.startswith(tag.encode() + b" OK")


def _raw_tls(imap: RunningImap) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", imap.imaps_port), timeout=10)
    connection = imap.client_tls().wrap_socket(raw)
    assert connection.recv(4096).startswith(b"* OK")
    return connection


def _until_closed(connection: ssl.SSLSocket) -> bytes:
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def test_a_literal_over_appendlimit_is_refused_before_it_is_read() -> None:
    with running_imap(limits=ImapLimits(append_limit=1000)) as imap:
        connection = _raw_tls(imap)
        connection.sendall(b"a LOGIN bob@hamburger.edu bob-password\r\n")
        assert b"a OK" in connection.recv(4096)
        connection.sendall(b"b APPEND INBOX {5000}\r\n")  # synchronizing: refused, not read
        assert b"TOOBIG" in connection.recv(4096)
        connection.sendall(b"c APPEND INBOX {5000+}\r\n")  # LITERAL+: bytes would follow
        assert b"* BYE [LIMIT]" in _until_closed(connection)


def test_literals_without_end_in_one_command_are_refused_past_appendlimit() -> None:
    # Each synchronizing literal is within the 4 KiB pymap allows outside APPEND; their sum
    # in one command is not allowed past APPENDLIMIT (plus a command line): the one that
    # would pass it is refused before it is sent, and the session goes on.
    with running_imap(limits=ImapLimits(append_limit=10_000)) as imap:
        connection = _raw_tls(imap)
        connection.sendall(b"a LOGIN bob@hamburger.edu bob-password\r\n")
        assert b"a OK" in connection.recv(4096)
        connection.sendall(b"b SEARCH TEXT {4000}\r\n")
        answers = b""
        for _ in range(40):
            answers = connection.recv(4096)
            if not answers.startswith(b"+ "):
                break
            connection.sendall(b"x" * 4000 + b" TEXT {4000}\r\n")
        assert answers == b"b BAD [TOOBIG] Command larger than APPENDLIMIT.\r\n"
        connection.sendall(b"c NOOP\r\n")
        assert connection.recv(4096).startswith(b"c OK")


def test_a_command_line_too_long_ends_the_connection() -> None:
    with running_imap() as imap:
        connection = _raw_tls(imap)
        connection.sendall(b"a NOOP " + b"x" * 70_000 + b"\r\n")
        assert b"* BYE [LIMIT] Command line too long." in _until_closed(connection)


def test_a_silent_client_is_let_go_sooner_before_login() -> None:
    limits = ImapLimits(login_seconds=0.5)
    with running_imap(limits=limits) as imap:
        connection = _raw_tls(imap)
        started = time.monotonic()
        assert b"* BYE [LIMIT] Idle for too long." in _until_closed(connection)
        assert time.monotonic() - started < 5


def test_connections_per_client_are_limited() -> None:
    with running_imap(limits=ImapLimits(per_client=2)) as imap:
        first, second = _raw_tls(imap), _raw_tls(imap)
        raw = socket.create_connection(("127.0.0.1", imap.imaps_port), timeout=10)
        third = imap.client_tls().wrap_socket(raw)
        assert b"* BYE [LIMIT]" in _until_closed(third)
        first.close()
        second.close()


def test_the_mailbox_repository_used_is_the_apis() -> None:
    """A message filed into the port's mailboxes is the one IMAP serves: no second store."""
    mailboxes = InMemoryMailboxRepository()
    with running_imap(mailboxes=mailboxes) as imap:
        filed = _file(imap)
        assert mailboxes.get(BOB, filed.message_id).uid == 1
        client = imap.logged_in()
        assert client.select("INBOX") == ("OK", [b"1"])


def test_namespace_unselect_sasl_ir_and_special_use_listing() -> None:
    with running_imap() as imap:
        client = imaplib.IMAP4_SSL("127.0.0.1", imap.imaps_port, ssl_context=imap.client_tls())
        assert "SASL-IR" in client.capabilities
        initial = base64.b64encode(f"\0{BOB}\0{ACCOUNTS[BOB]}".encode()).decode()
        status, _ = client._simple_command("AUTHENTICATE", "PLAIN", initial)
        assert status == "OK"
        client.state = "AUTH"
        capabilities = set(client.capability()[1][0].decode().split())
        assert {"NAMESPACE", "UNSELECT", "SPECIAL-USE"} <= capabilities
        assert client.namespace() == ("OK", [b'(("" "/")) NIL NIL'])

        _file(imap)
        client.select("INBOX")
        client.store("1", "+FLAGS", r"(\Deleted)")
        assert client.unselect()[0] == "OK"
        assert imap.storage.mailboxes.folder_named(BOB, "Inbox").total == 1  # not expunged

        client.create("Receipts")
        status, listed = client._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
        names = {line.decode().rsplit(" ", 1)[-1]
                 for line in client._untagged_response(status, listed, "LIST")[1]}
        assert names == {"Sent", "Drafts", "Trash", "Junk", "Archive"}
        status, listed = client._simple_command("LIST", '""', "*", "RETURN", "(SPECIAL-USE)")
        assert status == "OK"
        assert len(client._untagged_response(status, listed, "LIST")[1]) == 7


def test_a_wrong_initial_response_is_refused() -> None:
    with running_imap() as imap:
        client = imaplib.IMAP4_SSL("127.0.0.1", imap.imaps_port, ssl_context=imap.client_tls())
        wrong = base64.b64encode(f"\0{BOB}\0nope".encode()).decode()
        assert client._simple_command("AUTHENTICATE", "PLAIN", wrong) == (
            "NO", [b"[AUTHENTICATIONFAILED] Invalid authentication credentials."])
        with pytest.raises(imaplib.IMAP4.error):
            client._simple_command("AUTHENTICATE", "PLAIN", "not*base64")


def _behind_proxy(imap: RunningImap, client_address: str) -> socket.socket:
    """What the load balancer's TLS listener sends on to port 993's listener: a PROXY v2
    header, then the client's decrypted bytes."""
    connection = socket.create_connection(("127.0.0.1", imap.imaps_port), timeout=10)
    connection.sendall(proxy_v2_header(client_address, 40000))
    assert connection.recv(4096).startswith(b"* OK")
    return connection


def test_behind_the_load_balancer_the_lockout_counts_the_real_client() -> None:
    """PROXY v2 from the trusted networks only; the address it names is the one the login
    throttle counts."""
    loopback = (ipaddress.ip_network("127.0.0.0/8"),)
    with running_imap(proxy_trusted=loopback, throttle=InMemoryLoginThrottle(
            max_per_address=100, max_per_client=3)) as imap:
        for number in range(3):
            connection = _behind_proxy(imap, "198.51.100.7")
            connection.sendall(f"a LOGIN user{number}@hamburger.edu wrong\r\n".encode())
            assert b"a NO" in connection.recv(4096)
            connection.close()
        guesser = _behind_proxy(imap, "198.51.100.7")
        guesser.sendall(b"a LOGIN bob@hamburger.edu bob-password\r\n")
        assert b"too many failed logins" in guesser.recv(4096)
        neighbour = _behind_proxy(imap, "198.51.100.8")
        neighbour.sendall(b"a LOGIN bob@hamburger.edu bob-password\r\n")
        assert b"a OK" in neighbour.recv(4096)
        starttls_port = socket.create_connection(("127.0.0.1", imap.imap_port), timeout=10)
        starttls_port.sendall(proxy_v2_header("198.51.100.9", 40000))
        assert b"LOGINDISABLED" in starttls_port.recv(4096)  # TLS first, even behind it
    with running_imap(proxy_trusted=(ipaddress.ip_network("10.0.0.0/8"),)) as imap:
        raw = socket.create_connection(("127.0.0.1", imap.imaps_port), timeout=10)
        raw.sendall(proxy_v2_header("198.51.100.7", 40000))
        assert raw.recv(4096) == b""  # closed: a header from outside the load balancer


class CountingMailboxes(InMemoryMailboxRepository):
    """The in-memory mailboxes, counting the reads a watcher makes."""

    def __init__(self) -> None:
        super().__init__()
        self.modseq_reads = 0

    def highest_modseq(self, account: str, folder: str) -> int:
        self.modseq_reads += 1
        return super().highest_modseq(account, folder)


def _idle(client: imaplib.IMAP4) -> str:
    client.select("INBOX")
    tag = client._new_tag().decode()
    client.send(f"{tag} IDLE\r\n".encode())
    assert client.readline().startswith(b"+")
    return tag


def test_idle_clients_of_one_folder_share_one_poll() -> None:
    mailboxes = CountingMailboxes()
    with running_imap(mailboxes=mailboxes, limits=ImapLimits(idle_poll_seconds=0.2)) as imap:
        _file(imap)
        clients = [imap.logged_in() for _ in range(10)]
        for client in clients:
            _idle(client)
        before = mailboxes.modseq_reads  # each SELECT reads it once too
        time.sleep(2.0)
        polls = mailboxes.modseq_reads - before
        # One folder watched: about 2.0 / 0.2 reads, not ten times that.
        assert 5 <= polls <= 15, polls
        assert imap.listeners.watch.watched == 1
        _file(imap)
        for client in clients:
            assert client.readline() == b"* 2 EXISTS\r\n"


def test_a_hostile_message_is_fetched_whole_not_a_crash() -> None:
    nested = (b"Subject: deep\r\nContent-Type: message/rfc822\r\n\r\n" * 3000) + b"body\r\n"
    parts = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
             + b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 5000 + b"--b--\r\n")
    with running_imap() as imap:
        for raw in (nested, parts):
            _file(imap, raw=raw)
        client = imap.logged_in()
        client.select("INBOX")
        for number, raw in ((1, nested), (2, parts)):
            status, fetched = client.fetch(str(number), "(BODYSTRUCTURE ENVELOPE BODY.PEEK[])")
            assert status == "OK" and fetched[0][1] == raw
        assert client.noop()[0] == "OK"  # the connection is still there


class LaggingIndex(InMemoryMailboxRepository):
    """The by_uid index as DynamoDB may answer just after a write: the newest entry not
    there yet (a global secondary index is eventually consistent)."""

    lagging = False

    def list_by_uid(self, account, folder, first_uid, limit=None):  # type: ignore[no-untyped-def]
        entries = super().list_by_uid(account, folder, first_uid, limit)
        return entries[:-1] if self.lagging and entries else entries


def test_a_message_the_index_had_not_caught_up_with_is_in_the_selected_folder() -> None:
    mailboxes = LaggingIndex()
    with running_imap(mailboxes=mailboxes) as imap:
        _file(imap)
        newest = _file(imap)
        mailboxes.lagging = True
        client = imap.logged_in()
        # The listing lacks the newest message; the change log, read consistently, has it.
        assert client.select("INBOX") == ("OK", [b"2"])
        assert client.response("HIGHESTMODSEQ")[1] == [str(newest.modseq).encode()]
        assert client.uid("FETCH", "1:*", "(UID)")[1] == [b"1 (UID 1)", b"2 (UID 2)"]
