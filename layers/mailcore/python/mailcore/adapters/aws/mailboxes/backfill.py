"""The IMAP views of messages stored before views existed (or of an older format): every
message item of the table (or of one account) walked a page at a time, each without a view
in the current format given the view of its bytes (`mailpipe imap-views backfill`).

Idempotent and resumable: what has a current view is skipped, and views are put a batch
at a time as they are made, so a run stopped anywhere leaves only what it had not reached
for the next run to do. A message whose bytes are gone is counted, not fatal; the table or
the bucket unreachable is (StorageUnavailable)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.adapters.aws.dynamodb_keys import (
    MESSAGE_PREFIX,
    account_pk,
    imap_view_key,
    message_id_of_view_key,
)
from mailcore.adapters.aws.mailboxes.transactions import BATCH_GET_LIMIT, Table
from mailcore.adapters.aws.mailboxes.views import BATCH_WRITE_LIMIT, DynamoImapViews
from mailcore.adapters.aws.s3_store import S3RawMessageStore
from mailcore.errors import MessageNotFound, StorageUnavailable
from mailcore.imap_view import view as imap_view
from mailcore.observability import logger
from mailcore.ports import KeptView

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

# Messages read and their views made at once: S3 reads wait on the network, so a few run
# side by side (the parse itself holds the GIL).
READERS = 8


@dataclass
class BackfillCounts:
    seen: int = 0  # message items walked
    made: int = 0  # views made and put
    current: int = 0  # already had a view in the current format
    failed: int = 0  # bytes gone or unreadable, or no view could be made of them

    def line(self) -> str:
        return (f"{self.seen} message(s) seen, {self.made} view(s) made, "
                f"{self.current} already current, {self.failed} failure(s)")


@dataclass(frozen=True)
class _Stored:
    account: str
    message_id: str
    raw_key: str


class ImapViewBackfill(Table):
    def __init__(self, client: DynamoDBClient, table: str, s3: S3Client, bucket: str) -> None:
        super().__init__(client, table)
        self._views = DynamoImapViews(client, table, s3, bucket)
        self._store = S3RawMessageStore(s3, bucket)

    def run(self, account: str | None = None,
            progress: Callable[[BackfillCounts], None] | None = None) -> BackfillCounts:
        """Walk every message (or `account`'s), making the views that are missing; the
        counts, also given to `progress` after each batch put."""
        counts = BackfillCounts()
        with ThreadPoolExecutor(max_workers=READERS) as readers:
            for page in self._pages(account):
                counts.seen += len(page)
                by_account: dict[str, list[_Stored]] = defaultdict(list)
                for stored in page:
                    by_account[stored.account].append(stored)
                for messages in by_account.values():
                    for start in range(0, len(messages), BATCH_GET_LIMIT):
                        self._backfill(messages[start:start + BATCH_GET_LIMIT], counts,
                                       readers, progress)
        return counts

    def _pages(self, account: str | None) -> Iterator[list[_Stored]]:
        """The message items, a page of the table at a time (as large as DynamoDB's 1 MB
        page allows: no Limit); one account's by a query of its partition."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "ProjectionExpression": "#account, #message_id, #raw_key",
            "ExpressionAttributeNames": {"#account": "account", "#message_id": "message_id",
                                         "#raw_key": "raw_key", "#sk": "sk"},
            "ExpressionAttributeValues": {":message": {"S": MESSAGE_PREFIX}}}
        if account is None:
            request["FilterExpression"] = "begins_with(#sk, :message)"
        else:
            request["KeyConditionExpression"] = "pk = :pk AND begins_with(#sk, :message)"
            request["ExpressionAttributeValues"][":pk"] = {"S": account_pk(account)}
        while True:
            if account is None:
                response = self._scan(request)
            else:
                response = self._query(request, "reading the account's messages failed")
            yield [_Stored(item["account"]["S"], item["message_id"]["S"],
                           item["raw_key"]["S"]) for item in response.get("Items", [])]
            if not response.get("LastEvaluatedKey"):
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _scan(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            return dict(self._client.scan(**request))
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("reading the table failed") from exc

    def _backfill(self, messages: list[_Stored], counts: BackfillCounts,
                  readers: ThreadPoolExecutor,
                  progress: Callable[[BackfillCounts], None] | None) -> None:
        """One account's messages (at most a BatchGetItem's worth): those with a current
        view skipped, the others' views made and put a BatchWriteItem's worth at a time."""
        current = self._current(messages[0].account, [each.message_id for each in messages])
        counts.current += len(current)
        missing = [each for each in messages if each.message_id not in current]
        for start in range(0, len(missing), BATCH_WRITE_LIMIT):
            made = list(readers.map(self._view, missing[start:start + BATCH_WRITE_LIMIT]))
            kept = [each for each in made if each is not None]
            self._views.put(kept, if_missing=True)
            counts.made += len(kept)
            counts.failed += len(made) - len(kept)
            if progress is not None:
                progress(counts)

    def _current(self, account: str, message_ids: list[str]) -> set[str]:
        """Which of these messages have a view item in the current format (not decoded:
        only its format is read)."""
        keys = [imap_view_key(account, message_id) for message_id in message_ids]
        return {message_id_of_view_key(item["sk"]["S"])
                for item in self._batch_get(keys, "reading IMAP views failed", consistent=False)
                if item.get("format", {}).get("N") == str(imap_view.FORMAT)}

    def _view(self, stored: _Stored) -> KeptView | None:
        try:
            raw = self._store.get_raw(stored.raw_key)
        except MessageNotFound:
            # Deleted since its page was read, or lost: nothing to make a view of. (The
            # bucket unreachable, StorageUnavailable, stops the run: a rerun goes on.)
            logger.warning("message bytes gone; no IMAP view made",
                           message_id=stored.message_id, raw_key=stored.raw_key)
            return None
        try:
            return KeptView(stored.account, stored.message_id, stored.raw_key,
                            imap_view.make_view(raw))
        except Exception:  # noqa: BLE001 (counted as a failure; the rest go on)
            logger.exception("IMAP view not made", message_id=stored.message_id)
            return None
