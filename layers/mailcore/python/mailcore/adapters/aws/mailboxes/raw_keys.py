"""Where messages' bytes are, read for many messages at once: IMAP's ranged reads of a
FETCH's messages (their header sections) ask for a batch of them in one request, not one
GetItem each."""

from __future__ import annotations

from collections.abc import Sequence

from mailcore.adapters.aws.dynamodb_keys import message_key
from mailcore.adapters.aws.mailboxes.transactions import Table
from mailcore.domain.ids import is_message_id


class RawKeys(Table):
    def raw_keys(self, account: str, message_ids: Sequence[str]) -> dict[str, str]:
        keys = [message_key(account, message_id)
                for message_id in dict.fromkeys(message_ids) if is_message_id(message_id)]
        return {item["message_id"]["S"]: item["raw_key"]["S"]
                for item in self._batch_get(keys, "reading messages failed")}
