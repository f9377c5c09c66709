"""A selected folder is the folder, not its name: what one IMAP session selected stays the
folder it acts on (EXPUNGE, UID EXPUNGE, MOVE, COPY, STORE) while another session renames
it and makes a new folder under the old name; deleted, the session is told so and ends;
and a stale by-UID index entry never removes, moves or copies a message that moved
elsewhere. Two imaplib sessions against the IMAP server, on the in-memory mailboxes and
on DynamoDB (moto)."""

from __future__ import annotations

import contextlib
import imaplib
import shutil
from collections.abc import Callable

import pytest

from mailcore.adapters.memory.mailbox import InMemoryMailboxRepository
from mailcore.domain.mailbox import UidEntry
from mailcore.services.changes import MessageChange, change_message
from mailcore.wiring import aws_adapters
from tests.dovecot_support import PASSWORD, private_dovecot
from tests.imap_support import RunningImap, running_imap

BOB = "bob@hamburger.edu"


def _message(subject: str) -> bytes:
    return (f"From: alice@crepes.fr\r\nTo: {BOB}\r\nSubject: {subject}\r\n"
            f"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\n{subject}\r\n").encode()


def _subjects(imap: RunningImap, folder: str) -> list[str]:
    """What a third session, opened now, finds in the folder."""
    client = imap.logged_in(BOB)
    status, data = client.select(folder)
    assert status == "OK", data
    if data == [b"0"]:
        return []
    _, fetched = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    client.logout()
    return [part[1].decode().strip().removeprefix("Subject: ")
            for part in fetched if isinstance(part, tuple)]


def _renamed_and_made_again(imap: RunningImap) -> imaplib.IMAP4_SSL:
    """Session 1 selected T (message "old", UID 1) and marked it \\Deleted; session 2 then
    renamed T to T-old, made a new T and put "new" in it (UID 1 there too)."""
    other = imap.logged_in(BOB)
    assert other.create("T")[0] == "OK"
    assert other.append("T", None, None, _message("old"))[0] == "OK"
    session = imap.logged_in(BOB)
    assert session.select("T") == ("OK", [b"1"])
    assert session.store("1", "+FLAGS", r"(\Deleted)")[0] == "OK"
    assert other.rename("T", "T-old")[0] == "OK"
    assert other.create("T")[0] == "OK"
    assert other.append("T", None, None, _message("new"))[0] == "OK"
    other.logout()
    return session


SELECTED_ACTIONS: dict[str, tuple[Callable[[imaplib.IMAP4_SSL], object], str]] = {
    # what session 1 does, and where "old" is afterwards (None: gone)
    "EXPUNGE": (lambda session: session.expunge(), ""),
    "UID EXPUNGE": (lambda session: session.uid("EXPUNGE", "1"), ""),
    "UID MOVE": (lambda session: session.uid("MOVE", "1", "Archive"), "Archive"),
    "MOVE": (lambda session: session._simple_command("MOVE", "1", "Archive"), "Archive"),  # type: ignore[attr-defined]
    "COPY": (lambda session: session.copy("1", "Archive"), "Archive"),
}


@pytest.mark.parametrize("action", SELECTED_ACTIONS.values(), ids=SELECTED_ACTIONS.keys())
def test_a_renamed_folder_stays_selected_and_the_new_one_is_left_alone(action):
    command, old_goes_to = action
    with running_imap() as imap:
        session = _renamed_and_made_again(imap)

        status, _ = command(session)

        assert status == "OK"
        assert _subjects(imap, "T") == ["new"]  # the folder made under the name: untouched
        if old_goes_to:
            assert _subjects(imap, old_goes_to) == ["old"]
        else:
            assert _subjects(imap, "T-old") == []  # expunged from the folder it was in


def test_store_on_a_renamed_folder_flags_its_own_message():
    with running_imap() as imap:
        session = _renamed_and_made_again(imap)
        assert session.store("1", "+FLAGS", r"(\Flagged)")[0] == "OK"
        watcher = imap.logged_in(BOB)
        watcher.select("T")
        assert b"\\Flagged" not in watcher.fetch("1", "(FLAGS)")[1][0]  # type: ignore[operator]
        watcher.select("T-old")
        assert b"\\Flagged" in watcher.fetch("1", "(FLAGS)")[1][0]  # type: ignore[operator]


def test_the_same_on_dynamodb(stack):
    adapters = aws_adapters()
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views, store=adapters.store,
                      references=adapters.references) as imap:
        session = _renamed_and_made_again(imap)
        assert session.expunge()[0] == "OK"
        assert _subjects(imap, "T") == ["new"]
        assert _subjects(imap, "T-old") == []


@pytest.mark.parametrize("command", ["EXPUNGE", "NOOP", "UID MOVE"])
def test_a_deleted_folder_ends_the_session_that_selected_it(command):
    with running_imap() as imap:
        other = imap.logged_in(BOB)
        assert other.create("T")[0] == "OK"
        assert other.append("T", None, None, _message("old"))[0] == "OK"
        session = imap.logged_in(BOB)
        assert session.select("T") == ("OK", [b"1"])
        assert session.store("1", "+FLAGS", r"(\Deleted)")[0] == "OK"
        assert other.delete("T")[0] == "OK"
        assert other.create("T")[0] == "OK"
        assert other.append("T", None, None, _message("new"))[0] == "OK"

        with pytest.raises(imaplib.IMAP4.abort, match="deleted"):  # BYE, then closed
            if command == "UID MOVE":
                session.uid("MOVE", "1", "Archive")
            else:
                session._simple_command(command)  # type: ignore[attr-defined]

        assert _subjects(imap, "T") == ["new"]
        assert _subjects(imap, "Archive") == []


class StaleIndex(InMemoryMailboxRepository):
    """The by_uid index as DynamoDB may answer after a move: a global secondary index is
    eventually consistent, so for a moment it still lists a message where it was."""

    frozen: tuple[str, list[UidEntry]] | None = None

    def freeze(self, account: str, folder: str) -> None:
        self.frozen = folder, super().list_by_uid(account, folder, 1, 1000)

    def list_by_uid(self, account: str, folder: str, first_uid: int,
                    limit: int | None = None) -> list[UidEntry]:
        if self.frozen is None or self.frozen[0] != folder:
            return super().list_by_uid(account, folder, first_uid, limit)
        return [entry for entry in self.frozen[1] if entry.uid >= first_uid][:limit]


STALE_ACTIONS: dict[str, Callable[[imaplib.IMAP4_SSL], object]] = {
    "EXPUNGE": lambda session: session.expunge(),
    "UID EXPUNGE": lambda session: session.uid("EXPUNGE", "1"),
    "UID MOVE": lambda session: session.uid("MOVE", "1", "Trash"),
    "UID COPY": lambda session: session.uid("COPY", "1", "Trash"),
}


@pytest.mark.parametrize("command", STALE_ACTIONS.values(), ids=STALE_ACTIONS.keys())
def test_a_message_the_api_moved_is_not_touched_through_a_stale_index_entry(command):
    mailboxes = StaleIndex()
    with running_imap(mailboxes=mailboxes) as imap:
        other = imap.logged_in(BOB)
        assert other.append("INBOX", None, None, _message("moving"))[0] == "OK"
        session = imap.logged_in(BOB)
        assert session.select("INBOX") == ("OK", [b"1"])
        assert session.store("1", "+FLAGS", r"(\Deleted)")[0] == "OK"
        [entry] = mailboxes.list_by_uid(BOB, "Inbox", 1, 10)
        mailboxes.freeze(BOB, "Inbox")
        # Meanwhile the user moves it to Archive in the webmail.
        change_message(BOB, entry.message_id, MessageChange(mailbox="Archive"), mailboxes)

        command(session)

        assert mailboxes.get(BOB, entry.message_id).folder == "Archive"
        mailboxes.frozen = None
        assert _subjects(imap, "Archive") == ["moving"]
        assert _subjects(imap, "Trash") == []


@pytest.mark.skipif(shutil.which("dovecot") is None,
                    reason="dovecot-imapd comes with make test (system-packages)")
@pytest.mark.parametrize("deleted", [False, True], ids=["renamed", "deleted"])
def test_like_dovecot_the_folder_made_under_the_old_name_is_never_expunged(deleted):
    """Dovecot, the reference, leaves the new T alone too (its answer to the session that
    lost its folder is NO [SERVERBUG]; ours follows a rename, and says BYE to a delete)."""
    def race(session: imaplib.IMAP4, other: imaplib.IMAP4) -> list[bytes]:
        assert other.create("T")[0] == "OK"
        assert other.append("T", None, None, _message("old"))[0] == "OK"
        assert session.select("T") == ("OK", [b"1"])
        assert session.store("1", "+FLAGS", r"(\Deleted)")[0] == "OK"
        if deleted:
            assert other.delete("T")[0] == "OK"
        else:
            assert other.rename("T", "T-old")[0] == "OK"
        assert other.create("T")[0] == "OK"
        assert other.append("T", None, None, _message("new"))[0] == "OK"
        # Dovecot answers NO, we BYE (which imaplib may have read already, so the EXPUNGE
        # is refused on the client's side): what counts is what is left in the new T.
        with contextlib.suppress(imaplib.IMAP4.error):
            session.expunge()
        other.select("T")
        _, fetched = other.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        return [part[1].strip() for part in fetched if isinstance(part, tuple)]

    with private_dovecot() as dovecot:
        clients = [imaplib.IMAP4("127.0.0.1", dovecot.imap_port) for _ in range(2)]
        for client in clients:
            client.login("bob", PASSWORD)
        reference = race(*clients)
    with running_imap() as imap:
        ours = race(imap.logged_in(BOB), imap.logged_in(BOB))
    assert ours == reference == [b"Subject: new"]
