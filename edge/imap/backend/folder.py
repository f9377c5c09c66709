"""One folder of one account as IMAP sees it (pymap's mailbox; its UIDs are the folder's
own): what a client selects, kept up to date, searched, and changed message by message."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

from pymap.backend.mailbox import MailboxDataInterface
from pymap.concurrent import Event
from pymap.flags import FlagOp
from pymap.interfaces.message import CachedMessage
from pymap.parsing.message import AppendMessage
from pymap.parsing.specials import ObjectId, SequenceSet
from pymap.parsing.specials.flag import Flag, Recent, Wildcard, get_system_flags
from pymap.selected import SelectedMailbox, SelectedSet

from edge.imap.backend.idle import FolderWatch
from edge.imap.backend.message import ImapMessage
from edge.imap.backend.search_batch import passing
from edge.imap.backend.storage import ImapStorage
from edge.imap.condstore import FolderSnapshot, ModifiedSince
from edge.imap.flags import imap_flags, stored_flags
from edge.imap.search.criteria import Test
from mailcore.domain.junk import JUNK_KEYWORD, NOT_JUNK_KEYWORD
from mailcore.domain.mailbox import Folder, StoredMessage, UidEntry
from mailcore.errors import MessageNotFound
from mailcore.ports import Mailboxes
from mailcore.services.appending import append_message, copy_message
from mailcore.services.changes import remove_for_good

JUNK_FLAGS = (Flag(JUNK_KEYWORD.encode()), Flag(NOT_JUNK_KEYWORD.encode()))
UIDLESS_PAGE = 1000  # messages read per query when giving UIDs (give_uids)
RECENT_CHANGES = 50  # changes read again after a SELECT's listing (see update_selected)
SEARCH_BATCH = 100  # messages SEARCH tests per trip to the thread pool


def give_uids(mailboxes: Mailboxes, account: str, folder: str) -> int:
    """UIDs for a folder's messages filed before folders had them (an update that changes
    nothing gives one); how many got one. Reads the folder a page at a time."""
    given, cursor = 0, None
    while True:
        page = mailboxes.list_folder(account, folder, UIDLESS_PAGE, cursor)
        for message in page.messages:
            if not message.uid:
                with contextlib.suppress(MessageNotFound):
                    mailboxes.update(account, message.message_id, lambda same: same)
                    given += 1
        cursor = page.cursor
        if cursor is None:
            return given


class ImapFolder(MailboxDataInterface[ImapMessage]):
    """One folder of one account, as IMAP sees it."""

    def __init__(self, account: str, folder: Folder, storage: ImapStorage,
                 selected_set: SelectedSet, watch: FolderWatch) -> None:
        self.account = account
        self.folder = folder
        self._storage = storage
        self._selected_set = selected_set
        self._watch = watch

    @property
    def mailbox_id(self) -> ObjectId:
        return ObjectId(self.folder.id.encode())

    @property
    def readonly(self) -> bool:
        return False

    @property
    def uid_validity(self) -> int:
        return self.folder.uid_validity

    @property
    def permanent_flags(self) -> frozenset[Flag]:
        # Keywords too (\*): $Forwarded and the like are kept as they are. $Junk and
        # $NotJunk by name as well: some clients (Thunderbird) look for them there before
        # they mark junk on the server (RFC 5788), which teaches the account's filter.
        return (get_system_flags() - {Recent}) | {Wildcard, *JUNK_FLAGS}

    @property
    def selected_set(self) -> SelectedSet:
        return self._selected_set

    async def update_selected(self, selected: SelectedMailbox, *,
                              wait_on: Event | None = None) -> SelectedMailbox:
        if wait_on is not None and selected.mod_sequence is not None:
            # IDLE: back when the folder changed (or the client said DONE).
            await self._watch.wait(self.account, self.folder.id, selected.mod_sequence,
                                   wait_on)
        mailboxes, blocking = self._storage.mailboxes, self._storage.blocking
        if selected.mod_sequence is None:
            # The folder's MODSEQ first: whatever changes during the listing is newer and
            # comes again with the next update (a read a moment behind only repeats some).
            modseq = await blocking(mailboxes.highest_modseq, self.account, self.folder.id)
            entries = await self._all_entries()
            if len(entries) < self.folder.total:
                # Messages filed before folders had UIDs: they get theirs now, once.
                await blocking(give_uids, mailboxes, self.account, self.folder.id)
                modseq = await blocking(mailboxes.highest_modseq, self.account,
                                        self.folder.id)
                entries = await self._all_entries()
            selected.add_updates([self._message(entry) for entry in entries], [])
            # The by_uid index is eventually consistent: a message filed, flagged or moved
            # just before the listing may be missing from it or shown as it was. The last
            # changes before the listing's MODSEQ are read again from the change log, which
            # is read consistently, so the folder a client selects is the folder as it is,
            # and the HIGHESTMODSEQ it is told covers everything it was shown.
            selected.mod_sequence = max(0, modseq - RECENT_CHANGES)
        # This folder's item was read for this command (the session finds the selected
        # folder by its id each time), so its MODSEQ is not read again; after IDLE's wait
        # it is old, and read afresh.
        read_highest = self.folder.highest_modseq if wait_on is None else None
        changes = await blocking(mailboxes.changes_since, self.account, self.folder.id,
                                 selected.mod_sequence, read_highest)
        selected.add_updates([self._message(entry) for entry in changes.changed],
                             changes.expunged)
        selected.mod_sequence = changes.highest_modseq
        return selected

    async def _all_entries(self) -> list[UidEntry]:
        return await self._storage.blocking(self._storage.mailboxes.list_by_uid,
                                            self.account, self.folder.id, 1)

    def _message(self, entry: UidEntry) -> ImapMessage:
        return ImapMessage(entry, self.account, self._storage)

    async def search(self, selected: SelectedMailbox, test: Test
                     ) -> list[tuple[int, ImapMessage]]:
        """The selected messages that pass `test`, tested on the thread pool a batch at
        a time (search_batch.py): a criterion may read every message's view, or its bytes
        and decode them."""
        messages = [(seq, message) async for seq, message in
                    self.find(SequenceSet.all(), selected)]
        found: list[tuple[int, ImapMessage]] = []
        for start in range(0, len(messages), SEARCH_BATCH):
            found += await self._storage.blocking(passing, messages[start:start + SEARCH_BATCH],
                                                  selected, test, self.account, self._storage)
        return found

    async def append(self, append_msg: AppendMessage, *,
                     recent: bool = False) -> ImapMessage:
        storage = self._storage
        stored = await storage.blocking(
            append_message, self.account, self.folder.id, bytes(append_msg.literal),
            stored_flags(append_msg.flag_set), append_msg.when or datetime.now(UTC),
            storage.store, storage.references, storage.mailboxes, storage.views)
        return self._message(stored.uid_entry)

    async def copy(self, uid: int, destination: ImapFolder, *,
                   recent: bool = False) -> int | None:
        message_id = await self._message_id(uid)
        if message_id is None:
            return None
        storage = self._storage
        try:
            copied = await storage.blocking(copy_message, self.account, message_id,
                                            destination.folder.id, storage.store,
                                            storage.references, storage.mailboxes,
                                            storage.views, (self.folder.id, uid))
        except MessageNotFound:
            return None
        return copied.uid

    async def move(self, uid: int, destination: ImapFolder, *,
                   recent: bool = False) -> int | None:
        message_id = await self._message_id(uid)
        if message_id is None:
            return None
        target = destination.folder.id
        source = self.folder.id

        def into_destination(message: StoredMessage) -> StoredMessage:
            # The index entry may be a moment behind: only this folder's message with this
            # UID moves, checked inside the conditional update.
            if (message.folder, message.uid) != (source, uid):
                raise MessageNotFound(message_id)
            return replace(message, folder=target)

        try:
            moved = await self._storage.blocking(self._storage.mailboxes.update, self.account,
                                                 message_id, into_destination)
        except MessageNotFound:
            return None
        return moved.uid

    async def get(self, uid: int, cached_msg: CachedMessage) -> ImapMessage:
        # The selected state is brought up to date after every command, so what it holds
        # is what the mailbox held then.
        if not isinstance(cached_msg, ImapMessage):
            raise TypeError(cached_msg)
        return cached_msg

    async def update(self, uid: int, cached_msg: CachedMessage, flag_set: frozenset[Flag],
                     mode: FlagOp, *, unchanged_since: int | None = None) -> ImapMessage:
        """`unchanged_since`: CONDSTORE's STORE (UNCHANGEDSINCE n); the message as stored,
        not as this session last saw it, is compared, within the conditional update."""
        if not isinstance(cached_msg, ImapMessage):
            raise TypeError(cached_msg)
        message_id = cached_msg.entry.message_id

        def with_flags(message: StoredMessage) -> StoredMessage:
            if message.uid != uid or message.folder != self.folder.id:
                raise MessageNotFound(message_id)  # moved or copied over meanwhile
            if unchanged_since is not None and message.modseq > unchanged_since:
                raise ModifiedSince(uid)
            flags = stored_flags(mode.apply(imap_flags(message.flags), flag_set))
            return replace(message, flags=flags)

        try:
            changed = await self._storage.blocking(self._storage.mailboxes.update,
                                                   self.account, message_id, with_flags)
        except MessageNotFound:
            return cached_msg.expunged_copy()
        return self._message(changed.uid_entry)

    async def delete(self, uids: Iterable[int]) -> None:
        storage = self._storage
        for uid in uids:
            message_id = await self._message_id(uid)
            if message_id is None:
                continue
            # Only while it is this folder's message with this UID (the index entry may be
            # stale); its bytes go only with their last reference (other copies share them).
            with contextlib.suppress(MessageNotFound):
                await storage.blocking(remove_for_good, self.account, message_id,
                                       storage.mailboxes, storage.store, (self.folder.id, uid))

    async def _message_id(self, uid: int) -> str | None:
        entries = await self._storage.blocking(self._storage.mailboxes.list_by_uid,
                                               self.account, self.folder.id, uid, 1)
        return entries[0].message_id if entries and entries[0].uid == uid else None

    async def claim_recent(self, selected: SelectedMailbox) -> None:
        """\\Recent is not kept (RFC 9051 drops it): no message is ever recent."""

    async def cleanup(self) -> None:
        pass

    async def snapshot(self) -> FolderSnapshot:
        folder = self.folder
        return FolderSnapshot(self.mailbox_id, self.readonly, folder.uid_validity,
                              self.permanent_flags, self.session_flags, folder.total, 0,
                              folder.unread, None, folder.uid_next,
                              highest_modseq=folder.highest_modseq)
