"""The ImapViews port in memory, for tests: views kept encoded, as the table keeps them, in
the memory mailboxes' own dictionary (a message removed there takes its view along)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailcore.imap_view import view as imap_view
from mailcore.ports import KeptView

if TYPE_CHECKING:
    from mailcore.adapters.memory.mailbox import InMemoryMailboxRepository
    from mailcore.imap_view.view import ImapView


class InMemoryImapViews:
    def __init__(self, mailboxes: InMemoryMailboxRepository) -> None:
        self._views = mailboxes.views
        self.reads = 0  # get_many calls, for tests that count trips to storage
        self.writes = 0

    def put(self, views: Sequence[KeptView]) -> None:
        self.writes += 1
        for kept in views:
            self._views[(kept.account, kept.message_id)] = imap_view.encode(kept.view)

    def get_many(self, account: str, message_ids: Sequence[str]) -> dict[str, ImapView]:
        self.reads += 1
        found: dict[str, ImapView] = {}
        for message_id in message_ids:
            encoded = self._views.get((account, message_id))
            decoded = imap_view.decode(encoded) if encoded is not None else None
            if decoded is not None:
                found[message_id] = decoded
        return found
