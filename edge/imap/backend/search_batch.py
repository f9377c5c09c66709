"""SEARCH's test of one batch of the selected folder's messages, run on the thread pool.

Header criteria (FROM, TO, CC, BCC, SUBJECT, HEADER of a kept field, SENT*) read the
messages' stored views (mailcore/imap_view/view.py), the whole batch's with one request
the first time a criterion asks for one; a message's bytes are read only for what its
view does not hold (BODY, TEXT, a field not kept) or when it has no view yet, which is
then made from those bytes and kept, so that the next SEARCH reads no bytes for it."""

from __future__ import annotations

import contextlib

from pymap.selected import SelectedMailbox

from edge.imap.backend.message import ImapMessage
from edge.imap.backend.storage import ImapStorage
from edge.imap.search.criteria import Candidate, Test
from mailcore.errors import MessageNotFound, StorageUnavailable
from mailcore.imap_view.view import ImapView, make_view
from mailcore.ports import KeptView


class _BatchViews:
    """The batch's views, read together when one is first asked for."""

    def __init__(self, storage: ImapStorage, account: str, message_ids: list[str]) -> None:
        self._storage = storage
        self._account = account
        self._message_ids = message_ids
        self.found: dict[str, ImapView] | None = None  # None: not read (not needed) yet

    def get(self, message_id: str, size: int) -> ImapView | None:
        """The message's view, unless it is of other bytes than those listed (a draft
        saved again, read a moment behind): then none, and the bytes are read."""
        if self.found is None:
            self.found = self._storage.views.get_many(self._account, self._message_ids)
        view = self.found.get(message_id)
        return view if view is not None and view.size == size else None


def passing(messages: list[tuple[int, ImapMessage]], selected: SelectedMailbox, test: Test,
            account: str, storage: ImapStorage) -> list[tuple[int, ImapMessage]]:
    """The messages of the batch that pass `test` (blocking: storage reads)."""
    session_flags = selected.session_flags
    views = _BatchViews(storage, account,
                        [message.entry.message_id for _, message in messages])
    made: list[KeptView] = []

    def candidate(seq: int, message: ImapMessage) -> Candidate:
        message_id = message.entry.message_id

        def read_raw() -> bytes | None:
            try:
                stored = storage.mailboxes.get(account, message_id)
                raw = storage.store.get_raw(stored.raw_key)
            except MessageNotFound:
                return None  # gone meanwhile
            if views.found is not None and views.get(message_id, message.entry.size) is None:
                # Filed before views were made, or of an older format: made once, here.
                made.append(KeptView(account, message_id, stored.raw_key, make_view(raw)))
            return raw

        return Candidate(seq, message, message.get_flags(session_flags), message.entry.size,
                         read_raw, lambda: views.get(message_id, message.entry.size))

    found = [(seq, message) for seq, message in messages if test(candidate(seq, message))]
    if made:
        # A view not kept now is made again by the next SEARCH that needs it: the answer
        # is already found, from the bytes.
        with contextlib.suppress(StorageUnavailable):
            storage.views.put(made, if_missing=True)
    return found
