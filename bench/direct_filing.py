"""Filling a large folder fast for a benchmark: straight through the mailbox port.

Each message gets what filing gives it (its own S3 object, raw reference, UID and change
log entry), without the SMTP edge and the queue, which would take the local runtime ten
minutes for 10,000 messages. Imported by the benchmarks that need a large Inbox.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def file_directly(adapters: Any, account: str, count: int,
                  message: Callable[[int], bytes]) -> None:
    from mailcore.domain.ids import new_message_id
    from mailcore.domain.mailbox import StoredMessage
    from mailcore.parsing.bounded import summarise

    for number in range(count):
        raw = message(number)
        message_id = new_message_id()
        key = adapters.store.appended_key(message_id)
        adapters.store.put_object(key, raw, "message/rfc822")
        adapters.references.hold(key, 1)
        adapters.mailboxes.file(StoredMessage(
            account=account, message_id=message_id, folder="Inbox",
            received_at=datetime.now(UTC), raw_key=key, size=len(raw),
            summary=summarise(raw), accepted_id=message_id))
