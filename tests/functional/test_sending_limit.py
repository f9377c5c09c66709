"""The hourly sending limit in DynamoDB: one conditional counter per account and hour."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from mailcore.adapters.aws.dynamodb_keys import SENT_PREFIX
from mailcore.adapters.aws.dynamodb_sending_limit import DynamoSendingLimit
from mailcore.errors import SendingLimitReached
from tests.conftest import REGION

BOB = "bob@hamburger.edu"


def _limit(stack, per_hour: int, now: float = 1_800_000_000.0) -> DynamoSendingLimit:
    return DynamoSendingLimit(boto3.client("dynamodb", region_name=REGION),
                              stack.outputs["MailboxTableName"], per_hour, clock=lambda: now)


@pytest.mark.concurrent
def test_concurrent_senders_never_pass_the_limit_together(stack):
    limit = _limit(stack, per_hour=50)

    def charge(_: int) -> bool:
        try:
            limit.charge(BOB, 3)
        except SendingLimitReached:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        passed = sum(pool.map(charge, range(40)))
    assert passed == 50 // 3  # 16 messages of 3; the 17th would make 51


def test_the_limit_is_per_account_and_per_hour_and_says_when_to_retry(stack):
    hour_start = 1_800_000_000 - 1_800_000_000 % 3600
    late = _limit(stack, per_hour=2, now=hour_start + 3000)
    late.charge(BOB, 2)
    with pytest.raises(SendingLimitReached) as refused:
        late.charge(BOB, 1)
    assert refused.value.retry_after == 600
    late.charge("carol@hamburger.edu", 2)  # another account: its own count
    _limit(stack, per_hour=2, now=hour_start + 3600).charge(BOB, 2)  # the next hour
    with pytest.raises(SendingLimitReached):
        late.charge("dave@hamburger.edu", 3)  # more than an hour's worth at once


def test_the_counters_expire_and_live_under_the_edge_roles_key_prefix(stack):
    _limit(stack, per_hour=5).charge(BOB, 1)
    items = boto3.client("dynamodb", region_name=REGION).scan(
        TableName=stack.outputs["MailboxTableName"])["Items"]
    [counter] = [item for item in items if item["pk"]["S"].startswith(SENT_PREFIX)]
    assert counter["pk"]["S"] == f"{SENT_PREFIX}{BOB}"
    assert int(counter["expires_at"]["N"]) > 1_800_000_000
