"""The Mailboxes port (MailboxReader and MailboxWriter) in memory, for tests.

It keeps the promises the DynamoDB adapter keeps, checked by the same contract tests
(tests/contract): filing once, exact folder counts, role folders made by their first
message, unique user-folder names, moves into a deleted folder refused, cursors valid only
for the folder (or account) they were given for, a removed copy giving back its reference
to the raw bytes, and the junk keywords a move or copy teaches (domain.junk).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from mailcore.adapters.memory.raw_references import InMemoryRawReferences
from mailcore.domain.ids import is_message_id, new_message_id
from mailcore.domain.junk import after_move, copied_into
from mailcore.domain.mailbox import (
    FOLDER_SEPARATOR,
    ROLE_FOLDERS,
    Folder,
    FolderChanges,
    Page,
    StoredMessage,
    UidEntry,
    new_uid_validity,
    role_folder_id,
)
from mailcore.domain.message import search_text
from mailcore.errors import Conflict, FolderNotFound, InvalidCursor, MessageNotFound


@dataclass
class _Change:
    modseq: int
    uid: int
    message_id: str
    expunged: bool


@dataclass
class _FolderState:
    name: str
    total: int = 0
    unread: int = 0
    uid_validity: int = field(default_factory=new_uid_validity)
    uid_next: int = 1
    modseq: int = 0
    log: list[_Change] = field(default_factory=list)

    def advance(self, uid: int, message_id: str, expunged: bool = False) -> int:
        self.modseq += 1
        self.log.append(_Change(self.modseq, uid, message_id, expunged))
        return self.modseq


def _newest_first(message: StoredMessage) -> tuple[str, str]:
    return message.received_at.astimezone(UTC).isoformat(), message.message_id


class InMemoryMailboxRepository:
    def __init__(self, references: InMemoryRawReferences | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock  # when a moved or copied message entered its folder
        self.messages: dict[tuple[str, str], StoredMessage] = {}
        # Encoded IMAP views by (account, message id): InMemoryImapViews keeps them here so
        # that a message removed takes its view with it, as in the table.
        self.views: dict[tuple[str, str], bytes] = {}
        self.references = references if references is not None else InMemoryRawReferences()
        self._folders: dict[str, dict[str, _FolderState]] = {}  # account -> folder id -> state
        self._lock = threading.RLock()

    # -- MailboxWriter ---------------------------------------------------------------------
    def file(self, message: StoredMessage, *, holding: int = 0) -> bool:
        with self._lock:
            key = (message.account, message.message_id)
            if key in self.messages:
                return False
            if holding:
                self.references.hold(message.raw_key, holding)
            self._count(message.account, message.folder, 1, 0 if message.seen else 1)
            self.messages[key] = self._made_visible(message)
            return True

    def file_together(self, arrivals: Sequence[tuple[StoredMessage, int]]) -> list[bool]:
        return [self.file(message, holding=holding) for message, holding in arrivals]

    def create_folder(self, account: str, name: str) -> Folder:
        with self._lock:
            if self._folder_id_named(account, name) is not None:
                raise Conflict(f"a folder named {name!r} exists")
            folder_id = new_message_id()
            state = self._account_folders(account)[folder_id] = _FolderState(name)
            return self._folder(folder_id, state)

    def rename_folder(self, account: str, folder: Folder, new_name: str) -> Folder:
        with self._lock:
            folders = self._account_folders(account)
            if folders.get(folder.id, _FolderState("")).name != folder.name:
                raise Conflict("the folder changed meanwhile; try again")
            prefix = folder.name + FOLDER_SEPARATOR
            moving = [folder_id for folder_id, state in folders.items()
                      if folder_id not in ROLE_FOLDERS
                      and (folder_id == folder.id or state.name.startswith(prefix))]
            targets = {folder_id: new_name + folders[folder_id].name[len(folder.name):]
                       for folder_id in moving}
            staying = {state.name for folder_id, state in folders.items()
                       if folder_id not in targets}
            if staying & set(targets.values()):
                raise Conflict(f"a folder named {new_name!r} exists")
            for folder_id, target in targets.items():
                folders[folder_id].name = target
            return replace(folder, name=new_name)

    def delete_folder(self, account: str, folder: Folder) -> None:
        with self._lock:
            folders = self._account_folders(account)
            state = folders.get(folder.id)
            if state is None or state.total != 0:
                raise Conflict("only an empty folder can be deleted")
            del folders[folder.id]

    def open_folder(self, account: str, folder_id: str) -> Folder:
        with self._lock:
            folders = self._account_folders(account)
            if folder_id not in folders:
                if folder_id not in ROLE_FOLDERS:
                    raise FolderNotFound(folder_id)
                folders[folder_id] = _FolderState(folder_id)
            return self._folder(folder_id, folders[folder_id])

    def update(self, account: str, message_id: str,
               change: Callable[[StoredMessage], StoredMessage]) -> StoredMessage:
        with self._lock:
            current = self._message(account, message_id)
            # What it teaches, and when it entered a new folder.
            changed = after_move(current.folder, change(current), self._clock())
            if changed == current and current.uid:
                return current
            if changed.folder != current.folder:
                if (changed.folder not in ROLE_FOLDERS
                        and changed.folder not in self._account_folders(account)):
                    raise FolderNotFound(changed.folder)
                self._count(account, current.folder, -1, -int(not current.seen))
                self._count(account, changed.folder, 1, int(not changed.seen))
                if current.uid:
                    self._account_folders(account)[current.folder].advance(
                        current.uid, message_id, expunged=True)
                changed = self._made_visible(changed)
            else:
                self._count(account, current.folder, 0, int(current.seen) - int(changed.seen))
                if current.uid:
                    state = self._account_folders(account)[current.folder]
                    changed = replace(changed, modseq=state.advance(current.uid, message_id))
                else:
                    changed = self._made_visible(changed)
            self.messages[(account, message_id)] = changed
            return changed

    def remove(self, account: str, message_id: str,
               where: tuple[str, int] | None = None) -> tuple[StoredMessage, bool]:
        with self._lock:
            current = self._message(account, message_id)
            if where is not None and where != (current.folder, current.uid):
                raise MessageNotFound(message_id)  # moved (or moved back) meanwhile
            del self.messages[(account, message_id)]
            self.views.pop((account, message_id), None)
            self._count(account, current.folder, -1, 0 if current.seen else -1)
            state = self._account_folders(account)[current.folder]
            if current.uid:
                state.advance(current.uid, message_id, expunged=True)
            else:
                state.modseq += 1
            return current, self.references.give_back(current.raw_key)

    def copy(self, account: str, message_id: str, folder: str) -> StoredMessage:
        with self._lock:
            source = self._message(account, message_id)
            if folder not in ROLE_FOLDERS and folder not in self._account_folders(account):
                raise FolderNotFound(folder)
            if not self.references.share(source.raw_key):
                raise MessageNotFound(message_id)
            copied = replace(copied_into(source, folder, self._clock()),
                             message_id=new_message_id())
            self._count(account, folder, 1, int(not copied.seen))
            copied = self._made_visible(copied)
            self.messages[(account, copied.message_id)] = copied
            return copied

    # -- MailboxReader ---------------------------------------------------------------------
    def get(self, account: str, message_id: str) -> StoredMessage:
        with self._lock:
            return self._message(account, message_id)

    def raw_keys(self, account: str, message_ids: Sequence[str]) -> dict[str, str]:
        with self._lock:
            found = (self.messages.get((account, message_id)) for message_id in message_ids)
            return {message.message_id: message.raw_key for message in found if message}

    def list_folder(self, account: str, folder: str, limit: int, cursor: str | None) -> Page:
        return self._page(f"{account}#{folder}",
                          (message for message in self._messages_of(account)
                           if message.folder == folder), limit, cursor)

    def list_received_before(self, account: str, folder: str, before: datetime, limit: int,
                             cursor: str | None) -> Page:
        scope = f"{account}#{folder}#received-before"
        bound = (before.astimezone(UTC).isoformat(), "")  # before any message of that instant
        ordered = sorted((message for message in self._messages_of(account)
                          if message.folder == folder and _newest_first(message) < bound),
                         key=_newest_first)
        if cursor:
            after = _decode_cursor(cursor, scope)
            ordered = [message for message in ordered if _newest_first(message) > after]
        page = ordered[:limit]
        more = len(ordered) > limit
        return Page(messages=tuple(page),
                    cursor=_encode_cursor(scope, _newest_first(page[-1])) if more else None)

    def folders(self, account: str) -> list[Folder]:
        with self._lock:
            return [self._folder(folder_id, state)
                    for folder_id, state in self._account_folders(account).items()]

    def folder_named(self, account: str, name: str) -> Folder:
        with self._lock:
            role_id = role_folder_id(name)
            folders = self._account_folders(account)
            if role_id is not None:
                if role_id not in folders:  # before its first message: no UIDVALIDITY yet
                    return Folder(role_id, role_id, ROLE_FOLDERS[role_id], 0, 0)
                return self._folder(role_id, folders[role_id])
            folder_id = self._folder_id_named(account, name)
            if folder_id is None:
                raise FolderNotFound(name)
            return self._folder(folder_id, folders[folder_id])

    def folder_by_id(self, account: str, folder_id: str) -> Folder:
        with self._lock:
            state = self._account_folders(account).get(folder_id)
            if state is None:
                if folder_id not in ROLE_FOLDERS:
                    raise FolderNotFound(folder_id)
                return Folder(folder_id, folder_id, ROLE_FOLDERS[folder_id], 0, 0)
            return self._folder(folder_id, state)

    def search(self, account: str, folder: str | None, words: str, limit: int,
               cursor: str | None) -> Page:
        scope = f"{account}#{folder}" if folder is not None else account
        matching = (message for message in self._messages_of(account)
                    if (folder is None or message.folder == folder)
                    and words in search_text(message.summary))
        return self._page(scope, matching, limit, cursor)

    def list_by_uid(self, account: str, folder: str, first_uid: int,
                    limit: int | None = None) -> list[UidEntry]:
        entries = sorted((message.uid_entry for message in self._messages_of(account)
                          if message.folder == folder and message.uid >= first_uid),
                         key=lambda entry: entry.uid)
        return entries[:limit]

    def changes_since(self, account: str, folder: str, modseq: int,
                      read_highest: int | None = None) -> FolderChanges:
        with self._lock:
            state = self._account_folders(account).get(folder, _FolderState(folder))
            latest = {change.uid: change for change in state.log if change.modseq > modseq}
            changed = [self.messages[(account, change.message_id)].uid_entry
                       for change in latest.values() if not change.expunged
                       and (account, change.message_id) in self.messages]
            return FolderChanges(
                highest_modseq=state.modseq,
                changed=tuple(sorted(changed, key=lambda entry: entry.uid)),
                expunged=tuple(sorted(uid for uid, change in latest.items() if change.expunged)),
            )

    def highest_modseq(self, account: str, folder: str) -> int:
        with self._lock:
            state = self._account_folders(account).get(folder)
            return state.modseq if state else 0

    # -- inside ----------------------------------------------------------------------------
    def _made_visible(self, message: StoredMessage) -> StoredMessage:
        """The message gets its folder's next UID, at the folder's next MODSEQ."""
        state = self._account_folders(message.account)[message.folder]
        uid = state.uid_next
        state.uid_next += 1
        return replace(message, uid=uid, modseq=state.advance(uid, message.message_id))

    def _messages_of(self, account: str) -> list[StoredMessage]:
        with self._lock:
            return [message for (owner, _), message in self.messages.items() if owner == account]

    @staticmethod
    def _page(scope: str, messages: Iterable[StoredMessage], limit: int,
              cursor: str | None) -> Page:
        ordered = sorted(messages, key=_newest_first, reverse=True)
        if cursor:
            after = _decode_cursor(cursor, scope)
            ordered = [message for message in ordered if _newest_first(message) < after]
        page = ordered[:limit]
        more = len(ordered) > limit
        return Page(messages=tuple(page),
                    cursor=_encode_cursor(scope, _newest_first(page[-1])) if more else None)

    def _message(self, account: str, message_id: str) -> StoredMessage:
        if not is_message_id(message_id):
            raise MessageNotFound(message_id)
        try:
            return self.messages[(account, message_id)]
        except KeyError:
            raise MessageNotFound(message_id) from None

    def _account_folders(self, account: str) -> dict[str, _FolderState]:
        return self._folders.setdefault(account, {})

    def _folder_id_named(self, account: str, name: str) -> str | None:
        return next((folder_id for folder_id, state in self._account_folders(account).items()
                     if folder_id not in ROLE_FOLDERS and state.name == name), None)

    def _count(self, account: str, folder_id: str, total: int, unread: int) -> None:
        folders = self._account_folders(account)
        if folder_id not in folders:
            if folder_id not in ROLE_FOLDERS:
                raise FolderNotFound(folder_id)
            folders[folder_id] = _FolderState(folder_id)  # made by its first message
        folders[folder_id].total += total
        folders[folder_id].unread += unread

    @staticmethod
    def _folder(folder_id: str, state: _FolderState) -> Folder:
        return Folder(folder_id, state.name, ROLE_FOLDERS.get(folder_id), state.total,
                      state.unread, uid_validity=state.uid_validity, uid_next=state.uid_next,
                      highest_modseq=state.modseq)


def _encode_cursor(scope: str, after: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps([scope, *after]).encode()).decode()


def _decode_cursor(cursor: str, scope: str) -> tuple[str, str]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error) as exc:
        raise InvalidCursor from exc
    if not (isinstance(decoded, list) and len(decoded) == 3 and decoded[0] == scope
            and all(isinstance(part, str) for part in decoded)):
        raise InvalidCursor  # another folder's or account's cursor is as invalid as garbage
    return decoded[1], decoded[2]
