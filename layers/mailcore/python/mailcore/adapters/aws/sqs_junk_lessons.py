"""The junk lessons queue (issue 29): which of an account's messages may teach its filter
something new. A notice names messages only; the learner reads what they teach now."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.errors import PermanentFailure, StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

NOTICE_SCHEMA_VERSION = 1
# Ids are 26 characters: 100 of them and an address stay far below SQS's 256 KiB, and a
# notice stays one learner's small piece of work.
MAX_IDS_PER_NOTICE = 100


@dataclass(frozen=True)
class LessonNotice:
    account: str
    message_ids: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps({"schema_version": NOTICE_SCHEMA_VERSION, "account": self.account,
                           "message_ids": list(self.message_ids)})

    @classmethod
    def from_json(cls, body: str) -> LessonNotice:
        """PermanentFailure for a body that is not a notice of a schema this code reads
        (it would fail again however often it came back)."""
        try:
            document = json.loads(body)
            if document["schema_version"] != NOTICE_SCHEMA_VERSION:
                raise PermanentFailure(
                    f"unknown lesson notice schema {document['schema_version']!r}")
            account, ids = document["account"], document["message_ids"]
            if not isinstance(account, str) or not isinstance(ids, list) or not all(
                    isinstance(message_id, str) for message_id in ids):
                raise PermanentFailure("malformed lesson notice")
            return cls(account, tuple(ids))
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentFailure("malformed lesson notice") from exc


class SqsJunkLessons:
    """JunkLessons on SQS: one SendMessage per MAX_IDS_PER_NOTICE ids."""

    def __init__(self, sqs: SQSClient, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def notify(self, account: str, message_ids: Sequence[str]) -> None:
        for start in range(0, len(message_ids), MAX_IDS_PER_NOTICE):
            notice = LessonNotice(account, tuple(message_ids[start:start + MAX_IDS_PER_NOTICE]))
            try:
                self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=notice.to_json())
            except (ClientError, BotoCoreError) as exc:
                raise StorageUnavailable("queueing a junk lesson failed") from exc
