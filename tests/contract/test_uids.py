"""IMAP's view of a folder, through the Mailboxes port: UIDVALIDITY, UIDs that only grow
in the order messages become visible, and a MODSEQ with a change log (RFC 3501, 7162)."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from mailcore.domain.junk import NOT_JUNK_KEYWORD
from mailcore.domain.mailbox import UidEntry
from mailcore.errors import FolderNotFound
from mailcore.ports import Mailboxes
from tests.contract.conftest import MailboxSide
from tests.contract.test_mailboxes import BOB, _message


def _uids(mailboxes: Mailboxes, folder: str = "Inbox", first: int = 1) -> list[int]:
    return [entry.uid for entry in mailboxes.list_by_uid(BOB, folder, first, 1000)]


def test_uids_ascend_in_filing_order_and_a_repeat_takes_none(mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    # Filing order, not received order: a late message still gets the next UID.
    messages = [_message(minutes=minutes) for minutes in (5, 1, 3)]
    for number, message in enumerate(messages, start=1):
        mailboxes.file(message)
        mailboxes.file(message)
        stored = mailboxes.get(BOB, message.message_id)
        folder = mailboxes.folder_named(BOB, "Inbox")
        assert stored.uid == number and stored.modseq == folder.highest_modseq
        assert folder.uid_next == number + 1
    assert _uids(mailboxes) == [1, 2, 3]
    assert [entry.message_id for entry in mailboxes.list_by_uid(BOB, "Inbox", 2, 1)] == [
        messages[1].message_id]
    [entry] = mailboxes.list_by_uid(BOB, "Inbox", 3, 10)
    assert entry == UidEntry(3, messages[2].message_id, frozenset(), entry.modseq, 100,
                             messages[2].received_at)


def test_a_listing_is_whole_however_large_the_messages(mailbox_side: MailboxSide) -> None:
    # DynamoDB ends a query's page at 1 MB read, whatever its Limit (moto counts whole
    # items: 120 of these are 1.2 MB); the listing goes on to the end of the folder.
    mailboxes = mailbox_side.mailboxes
    for minutes in range(120):
        mailboxes.file(_message(minutes=minutes, subject="s" * 10_000))
    assert _uids(mailboxes) == list(range(1, 121))
    assert [entry.uid for entry in mailboxes.list_by_uid(BOB, "Inbox", 5, 110)] == list(
        range(5, 115))


def test_a_moved_message_gets_a_new_uid_above_the_destinations(
        mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    first, second = _message(minutes=0), _message(minutes=1)
    mailboxes.file(first)
    mailboxes.file(second)
    archive = mailboxes.create_folder(BOB, "Old")
    mailboxes.file(_message(folder="Sent", minutes=2))
    inbox_before = mailboxes.folder_named(BOB, "Inbox")

    moved = mailboxes.update(BOB, first.message_id, lambda m: replace(m, folder=archive.id))
    again = mailboxes.update(BOB, second.message_id, lambda m: replace(m, folder=archive.id))
    back = mailboxes.update(BOB, first.message_id, lambda m: replace(m, folder="Inbox"))
    assert (moved.uid, again.uid) == (1, 2)
    assert back.uid == 3  # above every UID the Inbox ever gave, not its old 1
    assert _uids(mailboxes, archive.id) == [2]
    assert _uids(mailboxes) == [3]
    inbox = mailboxes.folder_named(BOB, "Inbox")
    assert inbox.uid_next == 4 and inbox.uid_validity == inbox_before.uid_validity

    changes = mailboxes.changes_since(BOB, "Inbox", inbox_before.highest_modseq)
    assert changes.expunged == (1, 2)
    assert [entry.uid for entry in changes.changed] == [3]
    assert changes.highest_modseq == inbox.highest_modseq == back.modseq


def test_every_change_advances_the_modseq_and_is_told_once(mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    kept, gone = _message(minutes=0), _message(minutes=1)
    mailboxes.file(kept)
    mailboxes.file(gone)
    before = mailboxes.folder_named(BOB, "Inbox").highest_modseq

    flagged = mailboxes.update(BOB, kept.message_id,
                               lambda m: replace(m, flags=m.flags | {"flagged", "seen"}))
    assert flagged.modseq == before + 1 and flagged.uid == 1
    mailboxes.remove(BOB, gone.message_id)
    after = mailboxes.folder_named(BOB, "Inbox").highest_modseq
    assert after == before + 2

    changes = mailboxes.changes_since(BOB, "Inbox", before)
    assert [(entry.uid, entry.flags, entry.modseq) for entry in changes.changed] == [
        (1, frozenset({"flagged", "seen"}), before + 1)]
    assert changes.expunged == (2,)
    nothing = mailboxes.changes_since(BOB, "Inbox", after)
    assert (nothing.changed, nothing.expunged, nothing.highest_modseq) == ((), (), after)
    assert mailboxes.update(BOB, kept.message_id, lambda m: m).modseq == before + 1


def test_uidvalidity_stays_through_a_rename_and_changes_for_a_new_folder(
        mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    assert mailboxes.folder_named(BOB, "Inbox").uid_validity == 0  # not yet in being
    mailboxes.file(_message())
    inbox = mailboxes.folder_named(BOB, "Inbox").uid_validity
    mailboxes.file(_message(minutes=1))
    assert 0 < inbox < 2**32 and mailboxes.folder_named(BOB, "Inbox").uid_validity == inbox

    work = mailboxes.create_folder(BOB, "Work")
    assert 0 < work.uid_validity < 2**32
    renamed = mailboxes.rename_folder(BOB, work, "Job")
    assert mailboxes.folder_named(BOB, "Job").uid_validity == work.uid_validity
    mailboxes.delete_folder(BOB, mailboxes.folder_named(BOB, renamed.name))
    again = mailboxes.create_folder(BOB, "Job")
    assert again.id != work.id and again.uid_validity != work.uid_validity


# Threads call AWS at once: moto's server with the local runtime's atomic requests
# (tests/conftest.py, `stack`), as moto in process is not safe across threads.
@pytest.mark.concurrent
def test_uids_never_appear_below_one_already_seen_while_filing_in_parallel(
        mailbox_side: MailboxSide) -> None:
    """A client asking UID FETCH <next>:* again and again sees every message exactly once
    and never a new UID below one it has seen."""
    mailboxes = mailbox_side.mailboxes
    writers, per_writer = 4, 12
    done = threading.Event()
    seen: list[int] = []
    problems: list[str] = []

    def file_some(writer: int) -> None:
        for number in range(per_writer):
            mailboxes.file(_message(minutes=writer * 100 + number))

    def watch() -> None:
        while True:
            finished = done.is_set()
            after = seen[-1] + 1 if seen else 1
            for entry in mailboxes.list_by_uid(BOB, "Inbox", after, 1000):
                if seen and entry.uid <= seen[-1]:
                    problems.append(f"UID {entry.uid} after {seen[-1]}")
                seen.append(entry.uid)
            if finished:
                return

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=file_some, args=(writer,)) for writer in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done.set()
    watcher.join(60)
    assert problems == []
    assert len(seen) == writers * per_writer  # each once (gaps would be allowed)
    assert mailboxes.folder_named(BOB, "Inbox").total == writers * per_writer


def test_a_copy_is_a_new_message_sharing_the_bytes_until_the_last_goes(
        mailbox_side: MailboxSide) -> None:
    mailboxes, references = mailbox_side.mailboxes, mailbox_side.references
    original = _message(flags=frozenset({"seen"}))
    references.hold(original.raw_key, 1)
    mailboxes.file(original)
    archive = mailboxes.create_folder(BOB, "Kept")

    copied = mailboxes.copy(BOB, original.message_id, archive.id)
    assert copied.message_id != original.message_id
    # Into a folder of the user's: the copy says "not junk" (domain.junk), the original
    # says nothing.
    assert (copied.folder, copied.uid, copied.raw_key, copied.flags) == (
        archive.id, 1, original.raw_key, frozenset({"seen", NOT_JUNK_KEYWORD}))
    assert mailboxes.get(BOB, original.message_id).flags == {"seen"}
    assert mailboxes.get(BOB, copied.message_id) == copied
    assert mailboxes.folder_named(BOB, "Kept").total == 1
    assert mailboxes.changes_since(BOB, archive.id, 0).changed[0].uid == 1

    _, last = mailboxes.remove(BOB, original.message_id)
    assert last is False  # the copy still needs the bytes
    _, last = mailboxes.remove(BOB, copied.message_id)
    assert last is True
    gone = _message(minutes=1)
    references.hold(gone.raw_key, 1)
    mailboxes.file(gone)
    mailboxes.remove(BOB, mailboxes.copy(BOB, gone.message_id, "Archive").message_id)
    _, last = mailboxes.remove(BOB, gone.message_id)
    assert last is True


def test_opening_a_role_folder_gives_it_a_uidvalidity_once(mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    trash = mailboxes.open_folder(BOB, "Trash")
    assert 0 < trash.uid_validity < 2**32 and (trash.total, trash.uid_next) == (0, 1)
    assert mailboxes.open_folder(BOB, "Trash").uid_validity == trash.uid_validity
    assert "Trash" in {folder.id for folder in mailboxes.folders(BOB)}
    mailboxes.file(_message(folder="Trash"))
    assert mailboxes.folder_named(BOB, "Trash").uid_validity == trash.uid_validity
    work = mailboxes.create_folder(BOB, "Work")
    assert mailboxes.open_folder(BOB, work.id).uid_validity == work.uid_validity
    mailboxes.delete_folder(BOB, work)
    with pytest.raises(FolderNotFound):
        mailboxes.open_folder(BOB, work.id)


def test_the_highest_modseq_is_what_changes_since_says(mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    assert mailboxes.highest_modseq(BOB, "Inbox") == 0
    message = _message()
    mailboxes.file(message)
    mailboxes.update(BOB, message.message_id, lambda m: replace(m, flags=frozenset({"seen"})))
    assert mailboxes.highest_modseq(BOB, "Inbox") == mailboxes.changes_since(
        BOB, "Inbox", 0).highest_modseq == 2


def test_messages_filed_together_are_as_if_filed_one_by_one(mailbox_side: MailboxSide) -> None:
    mailboxes, references = mailbox_side.mailboxes, mailbox_side.references
    early = _message(minutes=0)
    mailboxes.file(early)
    before = mailboxes.folder_named(BOB, "Inbox")
    late, seen, last = (_message(minutes=3), _message(minutes=1, flags=frozenset({"seen"})),
                        _message(minutes=4))
    sent = _message(folder="Sent", minutes=2)

    filed = mailboxes.file_together([(late, 2), (early, 1), (seen, 1), (sent, 1), (last, 0),
                                     (seen, 1)])

    # `early` was there, and `seen` named twice: nothing taken for either repeat.
    assert filed == [True, False, True, True, True, False]
    assert [entry.message_id for entry in mailboxes.list_by_uid(BOB, "Inbox", 1, 10)] == [
        early.message_id, late.message_id, seen.message_id, last.message_id]
    assert _uids(mailboxes, "Sent") == [1]
    inbox = mailboxes.folder_named(BOB, "Inbox")
    assert (inbox.total, inbox.unread, inbox.uid_next) == (4, 3, 5)
    changes = mailboxes.changes_since(BOB, "Inbox", before.highest_modseq)
    # Each its own MODSEQ (RFC 7162 3.1), the folder's HIGHESTMODSEQ the last of them.
    modseqs = [entry.modseq for entry in changes.changed]
    assert [entry.uid for entry in changes.changed] == [2, 3, 4]
    assert len(set(modseqs)) == 3 and min(modseqs) > before.highest_modseq
    assert changes.highest_modseq == inbox.highest_modseq == max(modseqs)
    # Each first copy held its references; the repeat and the copy holding none did not.
    assert references.hold(late.raw_key, 1) is False
    assert references.hold(early.raw_key, 1) is True
    assert references.hold(last.raw_key, 1) is True


def test_more_messages_than_one_write_may_take_are_filed_in_their_order(
        mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    # Past the 25 a transaction takes here, and past the bytes it takes here (3 MB).
    messages = [_message(minutes=minutes, subject="s" * 150_000)
                for minutes in range(60)]
    assert mailboxes.file_together([(message, 1) for message in messages]) == [True] * 60
    assert [entry.message_id for entry in mailboxes.list_by_uid(BOB, "Inbox", 1, 100)] == [
        message.message_id for message in messages]
    assert mailboxes.folder_named(BOB, "Inbox").total == 60
