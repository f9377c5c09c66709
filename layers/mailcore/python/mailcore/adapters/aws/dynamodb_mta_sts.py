"""Fetched MTA-STS policies, one item per destination domain (dynamodb_keys.mta_sts_key),
shared by every instance of the deliver function; the table's TTL removes an item a day
after its policy expired."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.adapters.aws.dynamodb_keys import mta_sts_key
from mailcore.domain.mta_sts import CachedPolicy
from mailcore.errors import StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_KEPT_AFTER_EXPIRY = 86_400


class DynamoPolicyCache:
    """services.mta_sts.PolicyCache."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def get(self, domain: str) -> CachedPolicy | None:
        try:
            item = self._client.get_item(TableName=self._table, Key=mta_sts_key(domain)
                                         ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("reading MTA-STS policy failed") from exc
        if item is None:
            return None
        try:
            return CachedPolicy.from_document(json.loads(item["policy"]["S"]))
        except (KeyError, ValueError, TypeError):
            return None  # unreadable: fetched again

    def put(self, domain: str, cached: CachedPolicy) -> None:
        expires = int(cached.expires_at.timestamp()) + _KEPT_AFTER_EXPIRY
        try:
            self._client.put_item(TableName=self._table, Item={
                **mta_sts_key(domain),
                "policy": {"S": json.dumps(cached.to_document(), sort_keys=True)},
                "expires_at": {"N": str(expires)}})
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("storing MTA-STS policy failed") from exc
