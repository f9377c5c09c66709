"""CONDSTORE (RFC 7162) as a client library that speaks it sees it: IMAPClient for ENABLE,
HIGHESTMODSEQ, FETCH MODSEQ/CHANGEDSINCE, SEARCH MODSEQ and STATUS; imaplib for what
IMAPClient does not send (STORE UNCHANGEDSINCE, malformed modifiers). The MODSEQs are the
mailbox's own: a flag set by the API moves them as one set over IMAP does."""

from __future__ import annotations

import imaplib
import re
from dataclasses import replace

from imapclient import IMAPClient

from mailcore.domain.mailbox import StoredMessage
from tests.functional.test_imap import BOB, _file
from tests.imap_support import ACCOUNTS, RunningImap, running_imap


def _imapclient(imap: RunningImap) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=imap.imaps_port, ssl=True,
                        ssl_context=imap.client_tls(), timeout=10)
    client.login(BOB, ACCOUNTS[BOB])
    return client


def _flag_through_the_api(imap: RunningImap, message: StoredMessage, flag: str) -> int:
    changed = imap.storage.mailboxes.update(
        BOB, message.message_id, lambda stored: replace(stored, flags=stored.flags | {flag}))
    return changed.modseq


def test_a_client_asks_what_changed_since_its_last_modseq() -> None:
    with running_imap() as imap:
        filed = [_file(imap) for _ in range(3)]
        client = _imapclient(imap)
        assert b"CONDSTORE" in client.capabilities()
        assert client.enable("CONDSTORE") == [b"CONDSTORE"]
        selected = client.select_folder("INBOX")
        known = selected[b"HIGHESTMODSEQ"]
        assert known == max(message.modseq for message in filed)
        everything = client.fetch([1, 2, 3], ["FLAGS", "MODSEQ"])
        assert sorted(everything) == [1, 2, 3]
        assert all(data[b"MODSEQ"][0] <= known for data in everything.values())

        now = _flag_through_the_api(imap, filed[1], "seen")
        assert now > known
        changed = client.fetch([1, 2, 3], ["FLAGS"], modifiers=[f"CHANGEDSINCE {known}"])
        # Just the message the API flagged, with its new MODSEQ (implied by CHANGEDSINCE).
        assert list(changed) == [2]
        assert changed[2][b"MODSEQ"] == (now,)
        assert b"\\Seen" in changed[2][b"FLAGS"]

        found = client.search(["MODSEQ", str(known + 1)])
        assert found == [2]
        assert found.modseq == now
        assert client.search(["MODSEQ", str(now + 1)]) == []
        assert client.folder_status("INBOX", [b"HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"] == now
        client.logout()


def test_flags_set_over_imap_move_the_modseq_the_api_sees() -> None:
    with running_imap() as imap:
        message = _file(imap)
        client = _imapclient(imap)
        client.enable("CONDSTORE")
        before = client.select_folder("INBOX")[b"HIGHESTMODSEQ"]
        client.add_flags([1], [b"\\Flagged"])
        stored = imap.storage.mailboxes.get(BOB, message.message_id)
        assert "flagged" in stored.flags
        assert stored.modseq > before
        assert client.fetch([1], ["MODSEQ"])[1][b"MODSEQ"] == (stored.modseq,)
        client.logout()


def _raw_client(imap: RunningImap) -> imaplib.IMAP4_SSL:
    return imap.logged_in(BOB)


def test_a_conditional_store_leaves_a_message_changed_meanwhile_and_says_which() -> None:
    with running_imap() as imap:
        first, second = _file(imap), _file(imap)
        client = _raw_client(imap)
        client.select("INBOX")
        seen_at = max(first.modseq, second.modseq)
        # Another client (here the API) flags the first message after this one looked.
        _flag_through_the_api(imap, first, "flagged")
        status, data = client.uid("STORE", "1:2", f"(UNCHANGEDSINCE {seen_at})",
                                  "+FLAGS", "(\\Seen)")
        assert status == "OK"
        tagged = client.response("MODIFIED")[1]
        assert tagged == [b"1"]
        fetched = b" ".join(item for item in data if isinstance(item, bytes))
        # The second was stored, and the answer carries its new MODSEQ.
        assert re.search(rb"UID 2 MODSEQ \((\d+)\)", fetched)
        assert "seen" not in imap.storage.mailboxes.get(BOB, first.message_id).flags
        assert "seen" in imap.storage.mailboxes.get(BOB, second.message_id).flags
        client.logout()


def test_once_enabled_changes_made_elsewhere_come_with_their_modseq() -> None:
    with running_imap() as imap:
        message = _file(imap)
        client = _raw_client(imap)
        plain = imap.logged_in(BOB)
        plain.select("INBOX")
        assert client._simple_command("ENABLE", "CONDSTORE")[0] == "OK"
        assert client.untagged_responses.pop("ENABLED") == [b"CONDSTORE"]
        client.select("INBOX")
        now = _flag_through_the_api(imap, message, "answered")
        client.noop()
        assert client.response("FETCH")[1] == [
            f"1 (FLAGS (\\Answered) MODSEQ ({now}))".encode()]
        # A client that never asked for CONDSTORE is told the flags alone.
        plain.noop()
        assert plain.response("FETCH")[1] == [b"1 (FLAGS (\\Answered))"]
        client.logout()
        plain.logout()


def test_malformed_or_unknown_modifiers_get_bad() -> None:
    with running_imap() as imap:
        _file(imap)
        client = _raw_client(imap)
        client.select("INBOX")
        for arguments in [("1", "(FLAGS)", "(CHANGEDSINCE abc)"),
                          ("1", "(FLAGS)", "(CHANGEDSINCE 1 VANISHED)"),
                          ("1", "(FLAGS)", "(CHANGEDSINCE 99999999999999999999)")]:
            status, _ = _tagged(client, "UID FETCH " + " ".join(arguments))
            assert status == "BAD", arguments
        assert client.noop()[0] == "OK"  # the connection goes on
        client.logout()
        # A new connection: five BADs in one end it (pymap's bad-command limit).
        client = _raw_client(imap)
        client.select("INBOX")
        status, _ = _tagged(client, "STORE 1 (UNCHANGEDSINCE -1) +FLAGS (\\Seen)")
        assert status == "BAD"
        status, _ = _tagged(client, "SEARCH MODSEQ")
        assert status == "BAD"
        assert client.noop()[0] == "OK"
        client.logout()


def _tagged(client: imaplib.IMAP4, line: str) -> tuple[str, bytes]:
    """One raw command and its tagged answer (imaplib raises on BAD; this reads it)."""
    tag = client._new_tag()
    client.send(tag + b" " + line.encode() + b"\r\n")
    while True:
        answer = client.readline()
        if answer.startswith(tag + b" "):
            status = answer[len(tag) + 1:].split(b" ", 1)[0].decode()
            return status, answer
