"""A logged-in IMAP session: pymap's session over the account's folders, with LIST's
special-use attributes, SEARCH's own criteria, and the selected folder followed by its
identity."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pymap.config import IMAPConfig
from pymap.exceptions import MailboxNotFound
from pymap.parsing.response import ResponseBye, ResponseCode, ResponseNo
from pymap.parsing.specials import SearchKey
from pymap.search import SearchParams
from pymap.selected import SelectedMailbox

from edge.imap.backend.folder import ImapFolder
from edge.imap.backend.folders import SPECIAL_USE, ImapFolders
from edge.imap.backend.message import ImapMessage
from edge.imap.condstore.session import CondstoreSession
from edge.imap.search.criteria import all_of
from mailcore.domain.mailbox import ROLE_FOLDERS, role_folder_id


class ImapSession(CondstoreSession):
    def __init__(self, account: str, config: IMAPConfig, folders: ImapFolders) -> None:
        super().__init__(account)
        self._config = config
        self._folders = folders

    @property
    def config(self) -> IMAPConfig:
        return self._config

    @property
    def mailbox_set(self) -> ImapFolders:
        return self._folders

    async def list_mailboxes(self, ref_name: str, filter_: str, subscribed: bool = False,
                             selected: SelectedMailbox | None = None
                             ) -> tuple[Iterable[tuple[str, str | None, Sequence[bytes]]],
                                        SelectedMailbox | None]:
        delimiter = self.mailbox_set.delimiter
        if not filter_:  # RFC 3501 6.3.8: the hierarchy delimiter and root name
            return [("", delimiter, [b"Noselect"])], await self._load_updates(selected, None)
        tree = await self.mailbox_set.list_mailboxes()

        def matching() -> list[tuple[str, str | None, Sequence[bytes]]]:
            # SPECIAL-USE (RFC 6154): role folders say what they are for, so a client
            # finds Sent, Drafts and Trash whatever language it speaks.
            return [(entry.name, delimiter, [*entry.attributes, *self._special_use(entry.name)])
                    for entry in tree.list_matching(ref_name, filter_)]

        # Off the event loop: the cost grows with the folders and the pattern.
        listed = await self._folders.blocking(matching)
        return listed, await self._load_updates(selected, None)

    async def search_mailbox(self, selected: SelectedMailbox, keys: frozenset[SearchKey]
                             ) -> tuple[list[tuple[int, ImapMessage]], SelectedMailbox]:
        """pymap's search_mailbox with edge/imap/search/'s criteria (which say why)."""
        folder = await self._get_selected(selected)
        assert isinstance(folder, ImapFolder)
        test = all_of(keys, SearchParams(selected))
        found = await folder.search(selected, test)
        return found, await folder.update_selected(selected)

    async def _get_selected(self, selected: SelectedMailbox) -> ImapFolder:
        """What the session selected, by the folder's identity, never by its name: another
        session may rename it and make a new folder under the old name meanwhile."""
        try:
            return await self.mailbox_set.selected_folder(selected.mailbox_id.value.decode())
        except KeyError as exc:
            raise SelectedFolderGone(selected.lookup) from exc

    @staticmethod
    def _special_use(name: str) -> list[bytes]:
        role_id = role_folder_id(name)
        role = ROLE_FOLDERS.get(role_id) if role_id else None
        return [SPECIAL_USE[role]] if role in SPECIAL_USE else []


class SelectedFolderGone(MailboxNotFound):
    """The selected folder was deleted (by another session, or the API): the command is
    refused and the session ends with BYE (RFC 3501 7.1.5), since nothing it knows of the
    folder holds any more. Dovecot on Maildir answers NO [SERVERBUG] and keeps a session
    that can do nothing; both leave a folder made under the old name alone
    (tests/functional/test_imap_selected_folder.py)."""

    def get_response(self, tag: bytes) -> ResponseNo:
        response = ResponseNo(tag, b"Selected mailbox no longer exists.",
                              ResponseCode.of(b"NONEXISTENT"))
        response.add_untagged(ResponseBye(b"Selected mailbox was deleted, have to disconnect."))
        return response
