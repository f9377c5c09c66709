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
        self._mailboxes = mailboxes
        self._views = mailboxes.views
        self.reads = 0  # get_many calls, for tests that count trips to storage
        self.writes = 0

    def put(self, views: Sequence[KeptView], *, if_missing: bool = False) -> None:
        self.writes += 1
        for kept in views:
            key = (kept.account, kept.message_id)
            encoded = imap_view.encode(kept.view)
            if encoded is None:
                continue
            if if_missing:
                held = self._views.get(key)
                current = imap_view.decode(held) if held is not None else None
                if key not in self._mailboxes.messages or (
                        current is not None and current.size == kept.view.size):
                    continue
            self._views[key] = encoded

    def forget(self, account: str, message_id: str) -> None:
        self._views.pop((account, message_id), None)

    def get_many(self, account: str, message_ids: Sequence[str]) -> dict[str, ImapView]:
        self.reads += 1
        found: dict[str, ImapView] = {}
        budget = [imap_view.BATCH_VIEW_TEXT]  # decoded text this batch may hold
        for message_id in message_ids:
            encoded = self._views.get((account, message_id))
            decoded = imap_view.decode(encoded, budget) if encoded is not None else None
            if decoded is not None:
                found[message_id] = decoded
        return found
