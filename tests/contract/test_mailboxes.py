"""The Mailboxes port (MailboxReader, MailboxWriter): in memory and on DynamoDB alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mailcore.domain.ids import new_message_id
from mailcore.domain.junk import JUNK_KEYWORD, NOT_JUNK_KEYWORD, DecidedBy, JunkVerdict
from mailcore.domain.mailbox import FolderRole, Page, StoredMessage
from mailcore.domain.message import MessageSummary
from mailcore.errors import Conflict, FolderNotFound, InvalidCursor, MessageNotFound
from mailcore.ports import Mailboxes
from mailcore.s3_keys import message_key
from tests.contract.conftest import MailboxSide

BOB, CAROL = "bob@hamburger.edu", "carol@hamburger.edu"
START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _message(account: str = BOB, folder: str = "Inbox", minutes: int = 0,
             subject: str = "hello", flags: frozenset[str] = frozenset()) -> StoredMessage:
    message_id = new_message_id(int((START + timedelta(minutes=minutes)).timestamp() * 1000))
    return StoredMessage(
        account=account, message_id=message_id, folder=folder,
        received_at=START + timedelta(minutes=minutes), raw_key=message_key(message_id),
        size=100, flags=flags, accepted_id=message_id,
        summary=MessageSummary(from_="alice@crepes.fr", to=(account,), cc=(), subject=subject,
                               date=None, message_id_header=None, snippet="a snippet",
                               has_attachments=False, parse_problem=None))


def _counts(mailboxes: Mailboxes, account: str, name: str) -> tuple[int, int]:
    folder = mailboxes.folder_named(account, name)
    return folder.total, folder.unread


def _all_pages(read: object, limit: int = 2) -> list[str]:
    ids: list[str] = []
    cursor = None
    for _ in range(100):
        page = read(limit, cursor)  # type: ignore[operator]
        ids += [message.message_id for message in page.messages]
        cursor = page.cursor
        if cursor is None:
            return ids
    raise AssertionError("paging never ended")


def test_a_message_is_filed_once_and_counted_once(mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    message = _message()
    assert mailboxes.file(message) is True
    assert mailboxes.file(message) is False  # the same event again
    assert mailboxes.get(BOB, message.message_id) == replace(message, uid=1, modseq=1)
    assert _counts(mailboxes, BOB, "Inbox") == (1, 1)
    assert [(f.id, f.role) for f in mailboxes.folders(BOB)] == [("Inbox", FolderRole.INBOX)]


def test_role_folders_exist_before_their_first_message_in_any_letter_case(
        mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    assert _counts(mailboxes, BOB, "Trash") == (0, 0)
    assert mailboxes.folder_named(BOB, "INBOX").id == "Inbox"
    with pytest.raises(FolderNotFound):
        mailboxes.folder_named(BOB, "Receipts")


def test_another_accounts_message_is_not_found(mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    message = _message()
    mailboxes.file(message)
    for account, message_id in ((CAROL, message.message_id), (BOB, "not-an-id")):
        with pytest.raises(MessageNotFound):
            mailboxes.get(account, message_id)
    assert mailboxes.list_folder(CAROL, "Inbox", 10, None).messages == ()


def test_where_many_messages_bytes_are_is_read_at_once_and_only_the_accounts(
        mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    mine = [_message(minutes=minute) for minute in range(230)]  # three batches of 100
    for message in mine:
        mailboxes.file(message)
    theirs = _message(CAROL)
    mailboxes.file(theirs)
    gone = _message()
    asked = [message.message_id for message in mine] + [theirs.message_id, gone.message_id,
                                                         "not-an-id"]
    assert mailboxes.raw_keys(BOB, asked) == {message.message_id: message.raw_key
                                              for message in mine}
    assert mailboxes.raw_keys(BOB, []) == {}


def test_a_folder_is_listed_newest_first_a_page_at_a_time(mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    messages = [_message(minutes=minutes) for minutes in (3, 1, 4, 0, 2)]
    for message in messages:
        mailboxes.file(message)
    mailboxes.file(_message(folder="Sent", minutes=5))
    newest_first = [m.message_id for m in sorted(messages, key=lambda m: m.received_at,
                                                 reverse=True)]
    assert _all_pages(lambda limit, cursor: mailboxes.list_folder(BOB, "Inbox", limit,
                                                                  cursor)) == newest_first


def test_a_cursor_is_valid_only_where_it_was_given(mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    for minutes in range(3):
        mailboxes.file(_message(minutes=minutes))
        mailboxes.file(_message(folder="Sent", minutes=minutes))
    cursor = mailboxes.list_folder(BOB, "Inbox", 1, None).cursor
    assert cursor is not None
    for account, folder, given in ((BOB, "Sent", cursor), (CAROL, "Inbox", cursor),
                                   (BOB, "Inbox", "garbage!"), (BOB, "Inbox", "e30=")):
        with pytest.raises(InvalidCursor):
            mailboxes.list_folder(account, folder, 1, given)


def test_flags_and_moves_keep_the_counts_exact(mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    first, second = _message(minutes=0), _message(minutes=1)
    mailboxes.file(first)
    mailboxes.file(second)
    receipts = mailboxes.create_folder(BOB, "Receipts")

    seen = mailboxes.update(BOB, first.message_id,
                            lambda m: replace(m, flags=m.flags | {"seen"}))
    assert seen.seen and _counts(mailboxes, BOB, "Inbox") == (2, 1)
    unchanged = mailboxes.update(BOB, first.message_id, lambda m: m)
    assert unchanged == seen and _counts(mailboxes, BOB, "Inbox") == (2, 1)
    assert mailboxes.get(BOB, first.message_id) == seen

    mailboxes.update(BOB, second.message_id, lambda m: replace(m, folder=receipts.id))
    assert _counts(mailboxes, BOB, "Inbox") == (1, 0)
    assert _counts(mailboxes, BOB, "Receipts") == (1, 1)
    mailboxes.update(BOB, first.message_id, lambda m: replace(m, folder="Trash"))
    assert _counts(mailboxes, BOB, "Trash") == (1, 0)
    assert mailboxes.get(BOB, first.message_id).folder == "Trash"
    assert [m.message_id for m in mailboxes.list_folder(BOB, receipts.id, 10,
                                                        None).messages] == [second.message_id]


def test_a_move_into_a_deleted_folder_is_refused(mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    message = _message()
    mailboxes.file(message)
    gone = mailboxes.create_folder(BOB, "Gone")
    mailboxes.delete_folder(BOB, gone)
    with pytest.raises(FolderNotFound):
        mailboxes.update(BOB, message.message_id, lambda m: replace(m, folder=gone.id))
    assert mailboxes.get(BOB, message.message_id).folder == "Inbox"
    assert _counts(mailboxes, BOB, "Inbox") == (1, 1)


def test_folder_names_are_unique_and_renames_carry_the_folders_under(
        mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    work = mailboxes.create_folder(BOB, "Work")
    mailboxes.create_folder(BOB, "Work/2026")
    mailboxes.create_folder(BOB, "Play")
    with pytest.raises(Conflict):
        mailboxes.create_folder(BOB, "Work")
    with pytest.raises(Conflict):
        mailboxes.rename_folder(BOB, work, "Play")
    mailboxes.create_folder(CAROL, "Work")  # names are per account

    renamed = mailboxes.rename_folder(BOB, work, "Jobs")
    assert (renamed.id, renamed.name) == (work.id, "Jobs")
    assert sorted(f.name for f in mailboxes.folders(BOB)) == ["Jobs", "Jobs/2026", "Play"]
    assert mailboxes.folder_named(BOB, "Jobs").id == work.id
    with pytest.raises(FolderNotFound):
        mailboxes.folder_named(BOB, "Work/2026")
    mailboxes.create_folder(BOB, "Work")  # the old name is free again


def test_only_an_empty_folder_is_deleted(mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    folder = mailboxes.create_folder(BOB, "Full")
    message = _message()
    mailboxes.file(message)
    mailboxes.update(BOB, message.message_id, lambda m: replace(m, folder=folder.id))
    with pytest.raises(Conflict):
        mailboxes.delete_folder(BOB, mailboxes.folder_named(BOB, "Full"))
    mailboxes.update(BOB, message.message_id, lambda m: replace(m, folder="Inbox"))
    mailboxes.delete_folder(BOB, mailboxes.folder_named(BOB, "Full"))
    with pytest.raises(FolderNotFound):
        mailboxes.folder_named(BOB, "Full")


def test_search_finds_matches_newest_first_in_one_folder_or_all(
        mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    wanted = [_message(minutes=1, subject="Invoice 1"), _message(minutes=3, subject="invoice 2"),
              _message(folder="Sent", minutes=2, subject="Re: INVOICE")]
    for message in [*wanted, _message(minutes=4, subject="lunch"),
                    _message(CAROL, minutes=5, subject="invoice for carol")]:
        mailboxes.file(message)
    everywhere = [m.message_id for m in sorted(wanted, key=lambda m: m.received_at,
                                               reverse=True)]
    assert _all_pages(lambda limit, cursor: mailboxes.search(
        BOB, None, "invoice", limit, cursor)) == everywhere
    assert _all_pages(lambda limit, cursor: mailboxes.search(
        BOB, "Inbox", "invoice", limit, cursor)) == [wanted[1].message_id, wanted[0].message_id]


def test_the_first_copy_holds_the_references_in_its_own_write(
        mailbox_side: MailboxSide) -> None:
    mailboxes, references = mailbox_side.mailboxes, mailbox_side.references
    bob_copy = _message()
    carol_copy = replace(bob_copy, account=CAROL)
    assert mailboxes.file(bob_copy, holding=2) is True
    assert mailboxes.file(bob_copy, holding=7) is False  # a repeat holds nothing more
    assert references.hold(bob_copy.raw_key, 9) is False  # held already, by the copy
    mailboxes.file(carol_copy)
    assert mailboxes.remove(BOB, bob_copy.message_id)[1] is False  # Carol's still needs them
    assert mailboxes.remove(CAROL, carol_copy.message_id)[1] is True
    assert references.released(bob_copy.raw_key)


def test_removing_copies_lets_the_bytes_go_with_the_last(mailbox_side: MailboxSide) -> None:
    mailboxes, references = mailbox_side.mailboxes, mailbox_side.references
    bob_copy = _message(flags=frozenset({"seen"}))
    carol_copy = replace(bob_copy, account=CAROL, flags=frozenset())
    references.hold(bob_copy.raw_key, 2)
    mailboxes.file(bob_copy)
    mailboxes.file(carol_copy)

    removed, last = mailboxes.remove(BOB, bob_copy.message_id)
    assert (removed.message_id, removed.flags, last) == (bob_copy.message_id, bob_copy.flags,
                                                         False)
    assert _counts(mailboxes, BOB, "Inbox") == (0, 0)
    with pytest.raises(MessageNotFound):
        mailboxes.get(BOB, bob_copy.message_id)
    _, last = mailboxes.remove(CAROL, carol_copy.message_id)
    assert last is True and references.released(bob_copy.raw_key)
    with pytest.raises(MessageNotFound):
        mailboxes.remove(CAROL, carol_copy.message_id)


def test_a_folder_is_found_by_its_id_whatever_its_name_until_it_is_deleted(
        mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    work = mailboxes.create_folder(BOB, "Work")
    mailboxes.rename_folder(BOB, work, "Jobs")
    again = mailboxes.create_folder(BOB, "Work")  # another folder under the old name
    assert (mailboxes.folder_by_id(BOB, work.id).name, again.id != work.id) == ("Jobs", True)
    assert mailboxes.folder_by_id(BOB, "Archive").id == "Archive"  # before its first message
    mailboxes.delete_folder(BOB, mailboxes.folder_by_id(BOB, work.id))
    with pytest.raises(FolderNotFound):
        mailboxes.folder_by_id(BOB, work.id)
    with pytest.raises(FolderNotFound):
        mailboxes.folder_by_id(CAROL, again.id)  # another account's folder


def test_a_remove_where_the_message_no_longer_is_removes_nothing(
        mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    message = _message()
    mailboxes.file(message)
    filed = mailboxes.get(BOB, message.message_id)
    moved = mailboxes.update(BOB, message.message_id, lambda m: replace(m, folder="Archive"))
    with pytest.raises(MessageNotFound):  # a stale view: Inbox, its old UID
        mailboxes.remove(BOB, message.message_id, ("Inbox", filed.uid))
    assert mailboxes.get(BOB, message.message_id).folder == "Archive"
    removed, _ = mailboxes.remove(BOB, message.message_id, ("Archive", moved.uid))
    assert removed.folder == "Archive"
    with pytest.raises(MessageNotFound):
        mailboxes.get(BOB, message.message_id)


def test_a_folders_oldest_messages_are_listed_first_up_to_an_instant(
        mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    junk = [_message(folder="Junk", minutes=minutes) for minutes in (3, 1, 4, 0, 2)]
    for message in [*junk, _message(minutes=-1), _message(CAROL, folder="Junk", minutes=-1)]:
        mailboxes.file(message)
    before = START + timedelta(minutes=3)  # the message of minute 3 is not before it

    def read(limit: int, cursor: str | None) -> Page:
        return mailboxes.list_received_before(BOB, "Junk", before, limit, cursor)

    oldest_first = [m.message_id for m in sorted(junk, key=lambda m: m.received_at)][:3]
    assert _all_pages(read) == oldest_first
    assert _all_pages(read, limit=10) == oldest_first
    assert mailboxes.list_received_before(BOB, "Junk", START, 10, None).messages == ()
    cursor = read(1, None).cursor
    assert cursor is not None
    for account, folder in ((BOB, "Inbox"), (CAROL, "Junk")):
        with pytest.raises(InvalidCursor):
            mailboxes.list_received_before(account, folder, before, 1, cursor)


# ---- what a move teaches (issue 29: mailcore.domain.junk's table) -------------------------
def _moved(mailboxes: Mailboxes, message: StoredMessage, *folders: str) -> frozenset[str]:
    for folder in folders:
        mailboxes.update(BOB, message.message_id, lambda m, to=folder: replace(m, folder=to))
    return mailboxes.get(BOB, message.message_id).flags


def test_moves_set_the_junk_keywords_they_teach(mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    receipts = mailboxes.create_folder(BOB, "Receipts")
    messages = [_message(minutes=minute, flags=frozenset({"seen"})) for minute in range(7)]
    for message in messages:
        mailboxes.file(message)
    into_junk, back, archived, filed, deleted, junk_deleted, kept = messages
    assert _moved(mailboxes, into_junk, "Junk") == {"seen", JUNK_KEYWORD}
    assert _moved(mailboxes, back, "Junk", "Inbox") == {"seen", NOT_JUNK_KEYWORD}
    assert _moved(mailboxes, archived, "Archive") == {"seen", NOT_JUNK_KEYWORD}
    assert _moved(mailboxes, filed, receipts.id) == {"seen", NOT_JUNK_KEYWORD}
    assert _moved(mailboxes, deleted, "Trash") == {"seen"}  # deleting teaches nothing
    assert _moved(mailboxes, junk_deleted, "Junk", "Trash") == {"seen", JUNK_KEYWORD}
    # Staying in place changes no keyword (nor does setting one by hand, as STORE does).
    assert mailboxes.update(BOB, kept.message_id, lambda m: replace(
        m, flags=m.flags | {"$Junk"})).flags == {"seen", JUNK_KEYWORD}
    # What the update answered is what is stored, and listed.
    listed = mailboxes.list_folder(BOB, "Archive", 10, None).messages
    assert [(m.message_id, m.flags) for m in listed] == [(archived.message_id,
                                                          {"seen", NOT_JUNK_KEYWORD})]


def test_a_copy_into_junk_teaches_and_leaves_the_original_alone(
        mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    message = _message(flags=frozenset({"seen"}))
    mailboxes.file(message, holding=1)
    copied = mailboxes.copy(BOB, message.message_id, "Junk")
    assert copied.flags == {"seen", JUNK_KEYWORD}
    assert mailboxes.get(BOB, copied.message_id).flags == {"seen", JUNK_KEYWORD}
    assert mailboxes.get(BOB, message.message_id).flags == {"seen"}
    out = mailboxes.copy(BOB, copied.message_id, "Archive")  # out of Junk: not junk
    assert mailboxes.get(BOB, out.message_id).flags == {"seen", NOT_JUNK_KEYWORD}
    same = mailboxes.copy(BOB, message.message_id, "Inbox")  # in place: nothing taught
    assert mailboxes.get(BOB, same.message_id).flags == {"seen"}


def test_the_junk_verdict_is_kept_with_the_message(mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    verdict = JunkVerdict(junk=True, decided_by=DecidedBy.CONTENT, score=0.987654321012345,
                          reasons=("content", "junked:prizes.example"))
    judged = replace(_message(folder="Junk"), junk_verdict=verdict)
    plain = _message(minutes=1)  # filed without a verdict (or before verdicts)
    unscored = replace(_message(minutes=2), junk_verdict=JunkVerdict(
        junk=False, decided_by=DecidedBy.HISTORY, reasons=("wrote-to:crepes.fr",)))
    for message in (judged, plain, unscored):
        mailboxes.file(message, holding=1)
    assert mailboxes.get(BOB, judged.message_id).junk_verdict == verdict
    assert mailboxes.get(BOB, plain.message_id).junk_verdict is None
    assert mailboxes.get(BOB, unscored.message_id).junk_verdict == unscored.junk_verdict
    [listed] = mailboxes.list_folder(BOB, "Junk", 10, None).messages
    assert listed.junk_verdict == verdict
    moved = mailboxes.update(BOB, judged.message_id, lambda m: replace(m, folder="Inbox"))
    assert moved.junk_verdict == verdict  # where filing put it, whatever the owner did since
    assert mailboxes.get(BOB, judged.message_id).junk_verdict == verdict
    assert mailboxes.copy(BOB, judged.message_id, "Archive").junk_verdict == verdict


def test_a_move_or_copy_keeps_when_the_message_entered_its_folder(
        mailbox_side: MailboxSide) -> None:
    mailboxes = mailbox_side.mailboxes
    old = _message(folder="Inbox")  # received in 2026-11, moved into Junk today
    mailboxes.file(old, holding=1)
    filed = mailboxes.get(BOB, old.message_id)
    assert filed.folder_since is None and filed.in_folder_since == old.received_at
    # A change of flags alone is no move: still there since it was filed.
    assert mailboxes.update(BOB, old.message_id,
                            lambda m: replace(m, flags=m.flags | {"seen"})).folder_since is None

    before = datetime.now(UTC)
    moved = mailboxes.update(BOB, old.message_id, lambda m: replace(m, folder="Junk"))
    after = datetime.now(UTC)
    assert moved.folder_since is not None and before <= moved.folder_since <= after
    assert mailboxes.get(BOB, old.message_id).folder_since == moved.folder_since
    [listed] = mailboxes.list_received_before(BOB, "Junk", START + timedelta(days=1), 10,
                                              None).messages
    assert (listed.received_at, listed.in_folder_since) == (old.received_at, moved.folder_since)
    # Flags changed in Junk later keep the move's time.
    assert mailboxes.update(BOB, old.message_id, lambda m: replace(
        m, flags=m.flags - {"seen"})).folder_since == moved.folder_since

    copied = mailboxes.copy(BOB, old.message_id, "Archive")
    stored_copy = mailboxes.get(BOB, copied.message_id)
    assert stored_copy.folder_since == copied.folder_since
    assert copied.folder_since is not None and after <= copied.folder_since <= datetime.now(UTC)
    assert mailboxes.get(BOB, old.message_id).folder_since == moved.folder_since
