from __future__ import annotations

import threading

from mailcore.domain.mailbox import ROLE_FOLDERS, Folder, Page, StoredMessage
from mailcore.errors import InvalidRequest, MessageNotFound


class InMemoryMailboxRepository:
    """MailboxWriter.file and MailboxReader's get, list_folder and folders, in memory:
    what filing and its tests use (folder and message changes are the DynamoDB
    adapter's, tested on moto)."""

    def __init__(self) -> None:
        self.messages: dict[tuple[str, str], StoredMessage] = {}
        self._lock = threading.Lock()

    def file(self, message: StoredMessage) -> bool:
        with self._lock:
            key = (message.account, message.message_id)
            if key in self.messages:
                return False
            self.messages[key] = message
            return True

    def list_folder(self, account: str, folder: str, limit: int, cursor: str | None) -> Page:
        in_folder = sorted(
            (m for (owner, _), m in self.messages.items()
             if owner == account and m.folder == folder),
            key=lambda m: (m.received_at, m.message_id),
            reverse=True,
        )
        start = 0
        if cursor:
            if not cursor.isdigit():
                raise InvalidRequest("invalid cursor", field="cursor")
            start = int(cursor)
        page = in_folder[start : start + limit]
        more = start + limit < len(in_folder)
        return Page(messages=tuple(page), cursor=str(start + limit) if more else None)

    def get(self, account: str, message_id: str) -> StoredMessage:
        try:
            return self.messages[(account, message_id)]
        except KeyError:
            raise MessageNotFound(message_id) from None

    def folders(self, account: str) -> list[Folder]:
        counts: dict[str, list[int]] = {}
        for (owner, _), message in self.messages.items():
            if owner == account:
                total_unread = counts.setdefault(message.folder, [0, 0])
                total_unread[0] += 1
                total_unread[1] += 0 if message.seen else 1
        return [Folder(name, name, ROLE_FOLDERS.get(name), total, unread)
                for name, (total, unread) in counts.items()]
