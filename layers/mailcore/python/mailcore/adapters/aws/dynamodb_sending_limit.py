"""Recipients sent per account and hour (dynamodb_keys.sent_key), one counter
per hour that DynamoDB's TTL removes (`expires_at`). The edge may write these items only
(its role's LeadingKeys condition), so the key prefix is part of the contract."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.adapters.aws.dynamodb_keys import sent_key
from mailcore.errors import SendingLimitReached, StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

HOUR = 3600


class DynamoSendingLimit:
    def __init__(self, client: DynamoDBClient, table: str, per_hour: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._per_hour = per_hour
        self._clock = clock

    def charge(self, account: str, recipients: int) -> None:
        now = int(self._clock())
        hour = now - now % HOUR
        if recipients > self._per_hour:
            raise SendingLimitReached(f"{recipients} recipients at once", hour + HOUR - now)
        try:
            # One conditional update: concurrent sessions and functions cannot both pass.
            self._client.update_item(
                TableName=self._table, Key=sent_key(account, hour),
                UpdateExpression="ADD recipients :count SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(recipients) OR recipients <= :room",
                ExpressionAttributeValues={
                    ":count": {"N": str(recipients)},
                    ":room": {"N": str(self._per_hour - recipients)},
                    ":expires": {"N": str(hour + 2 * HOUR)}})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise SendingLimitReached(f"over {self._per_hour} recipients this hour",
                                          hour + HOUR - now) from exc
            raise StorageUnavailable("counting sent recipients failed") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("counting sent recipients failed") from exc
