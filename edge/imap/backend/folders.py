"""An account's folders as IMAP lists them (pymap's mailbox set): the six role folders
always, then the account's own; made, renamed and deleted through the same ports as the
API's."""

from __future__ import annotations

from pymap.backend.mailbox import MailboxSetInterface
from pymap.exceptions import MailboxHasChildren, NotAllowedError, TemporaryFailure
from pymap.parsing.specials import ObjectId
from pymap.selected import SelectedSet

from edge.imap.backend.folder import ImapFolder
from edge.imap.backend.idle import FolderWatch
from edge.imap.backend.storage import Blocking, ImapStorage
from edge.imap.listing import FolderTree
from mailcore.domain.mailbox import (
    FOLDER_SEPARATOR,
    INBOX,
    ROLE_FOLDERS,
    Folder,
    FolderRole,
    folder_name_problem,
    role_folder_id,
)
from mailcore.errors import Conflict, FolderNotFound

IMAP_INBOX = "INBOX"  # RFC 3501 5.1: INBOX in any case is the Inbox
SPECIAL_USE = {FolderRole.SENT: b"Sent", FolderRole.DRAFTS: b"Drafts",
               FolderRole.TRASH: b"Trash", FolderRole.JUNK: b"Junk",
               FolderRole.ARCHIVE: b"Archive"}  # pymap adds the backslash
SPECIAL_USE_ATTRIBUTES = frozenset(SPECIAL_USE.values())


def imap_name(folder: Folder) -> str:
    return IMAP_INBOX if folder.id == INBOX else folder.name


class ImapFolders(MailboxSetInterface[ImapFolder]):
    """An account's folders: the six role folders always, then the account's own."""

    def __init__(self, account: str, storage: ImapStorage,
                 selected_sets: dict[tuple[str, str], SelectedSet], watch: FolderWatch) -> None:
        self.account = account
        self._storage = storage
        self._selected_sets = selected_sets
        self._watch = watch

    @property
    def delimiter(self) -> str:
        return FOLDER_SEPARATOR

    @property
    def blocking(self) -> Blocking:
        return self._storage.blocking

    async def set_subscribed(self, name: str, subscribed: bool) -> None:
        """Every folder is subscribed: LSUB lists them all, as LIST does."""

    async def list_subscribed(self) -> FolderTree:
        return await self.list_mailboxes()

    async def list_mailboxes(self) -> FolderTree:
        folders = await self._storage.blocking(self._storage.mailboxes.folders, self.account)
        names = {imap_name(folder) for folder in folders}
        names |= {IMAP_INBOX if role_id == INBOX else role_id for role_id in ROLE_FOLDERS}
        tree = FolderTree(self.delimiter)
        tree.update(IMAP_INBOX, *sorted(names - {IMAP_INBOX}))
        return tree

    async def get_mailbox(self, name: str) -> ImapFolder:
        try:
            folder = await self._storage.blocking(self._storage.mailboxes.folder_named,
                                                  self.account, name)
            return await self._opened(folder)
        except FolderNotFound as exc:
            raise KeyError(name) from exc

    async def selected_folder(self, folder_id: str) -> ImapFolder:
        """The folder a session selected, by its id: renamed since, it is still the one;
        deleted (even if another was made under its name), KeyError."""
        try:
            folder = await self._storage.blocking(self._storage.mailboxes.folder_by_id,
                                                  self.account, folder_id)
            return await self._opened(folder)
        except FolderNotFound as exc:
            raise KeyError(folder_id) from exc

    async def _opened(self, folder: Folder) -> ImapFolder:
        if not folder.uid_validity:
            # A role folder before its first message, or a folder made before folders
            # had UIDs: it gets its UIDVALIDITY now, once.
            folder = await self._storage.blocking(self._storage.mailboxes.open_folder,
                                                  self.account, folder.id)
        selected_set = self._selected_sets.setdefault((self.account, folder.id), SelectedSet())
        return ImapFolder(self.account, folder, self._storage, selected_set, self._watch)

    async def add_mailbox(self, name: str) -> ObjectId:
        problem = folder_name_problem(name)
        if problem is not None:
            if role_folder_id(name) is not None:
                raise ValueError(name)  # it exists: [ALREADYEXISTS]
            raise NotAllowedError(problem)
        try:
            folder = await self._storage.blocking(self._storage.mailboxes.create_folder,
                                                  self.account, name)
        except Conflict as exc:
            raise ValueError(name) from exc
        return ObjectId(folder.id.encode())

    async def delete_mailbox(self, name: str) -> None:
        if role_folder_id(name) is not None:
            raise NotAllowedError("a role folder cannot be deleted")
        folder = await self.get_mailbox(name)
        tree = await self.list_mailboxes()
        if any(entry.name.startswith(name + FOLDER_SEPARATOR)
               for entry in tree.list_matching("", "*")):
            raise MailboxHasChildren(name)
        # RFC 3501 6.3.4: its messages go with it.
        entries = await folder._all_entries()
        await folder.delete(entry.uid for entry in entries)
        try:
            await self._storage.blocking(self._storage.mailboxes.delete_folder,
                                         self.account, folder.folder)
        except Conflict as exc:
            raise TemporaryFailure("the folder changed meanwhile; try again") from exc

    async def rename_mailbox(self, before: str, after: str) -> None:
        if role_folder_id(before) is not None:
            raise NotAllowedError("a role folder cannot be renamed")
        problem = folder_name_problem(after)
        if problem is not None:
            if role_folder_id(after) is not None:
                raise ValueError(after)
            raise NotAllowedError(problem)
        folder = await self.get_mailbox(before)
        try:
            await self._storage.blocking(self._storage.mailboxes.rename_folder, self.account,
                                         folder.folder, after)
        except Conflict as exc:
            raise ValueError(after) from exc
