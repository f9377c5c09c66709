"""The mailbox ports (MailboxReader, MailboxWriter: Mailboxes) on one DynamoDB table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mailcore.adapters.aws.dynamodb_raw_references import DynamoRawReferences
from mailcore.adapters.aws.mailboxes.folders import Folders
from mailcore.adapters.aws.mailboxes.messages import Messages
from mailcore.adapters.aws.mailboxes.raw_keys import RawKeys
from mailcore.adapters.aws.mailboxes.received import ReceivedBefore
from mailcore.adapters.aws.mailboxes.search import Search

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoMailboxRepository(Messages, Folders, Search, RawKeys, ReceivedBefore):
    def __init__(self, client: DynamoDBClient, table: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__(client, table, clock)
        self._references = DynamoRawReferences(client, table)
