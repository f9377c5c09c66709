"""STORE's UNCHANGEDSINCE over the folders (RFC 7162 3.1.3): each message's condition is
checked within its conditional update, against the message as stored."""

from __future__ import annotations

from pymap.backend.session import BaseSession
from pymap.exceptions import MailboxReadOnly
from pymap.flags import FlagOp
from pymap.parsing.specials import SequenceSet
from pymap.parsing.specials.flag import Flag
from pymap.selected import SelectedMailbox

from edge.imap.backend.folder import ImapFolder
from edge.imap.backend.message import ImapMessage
from edge.imap.condstore import ModifiedSince


class CondstoreSession(BaseSession[ImapMessage]):
    """pymap's session with the conditional STORE."""

    async def store_unless_changed(
            self, selected: SelectedMailbox, sequence_set: SequenceSet,
            flag_set: frozenset[Flag], mode: FlagOp, unchanged_since: int | None
    ) -> tuple[list[tuple[int, ImapMessage]], list[tuple[int, ImapMessage]],
               SelectedMailbox]:
        """pymap's update_flags with CONDSTORE's condition (RFC 7162 3.1.3): the messages
        changed, those left as they were because they changed after `unchanged_since`,
        and the selected folder brought up to date."""
        if selected.readonly:
            raise MailboxReadOnly()
        folder = await self._get_selected(selected)
        assert isinstance(folder, ImapFolder)
        permanent_flags = selected.permanent_flags & flag_set
        changed: list[tuple[int, ImapMessage]] = []
        modified: list[tuple[int, ImapMessage]] = []
        for seq, cached in selected.messages.get_all(sequence_set):
            assert isinstance(cached, ImapMessage)
            try:
                message = await folder.update(cached.uid, cached, permanent_flags, mode,
                                              unchanged_since=unchanged_since)
            except ModifiedSince:
                modified.append((seq, cached))
                continue
            if not message.expunged:
                selected.session_flags.update(cached.uid, flag_set, mode)
            changed.append((seq, message))
        return changed, modified, await folder.update_selected(selected)
