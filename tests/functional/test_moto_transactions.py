"""moto's DynamoDB transactions, as the tests and the local runtime use them, keep
DynamoDB's all-or-nothing rule."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.conftest import REGION


def _item(table: str, pk: str, sk: str) -> dict | None:
    return boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")


def test_failed_condition_cancels_every_write_of_the_transaction(stack):
    table = stack.outputs["MailboxTableName"]
    client = boto3.client("dynamodb", region_name=REGION)
    client.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "exists"}})
    with pytest.raises(ClientError) as cancelled:
        client.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {"pk": {"S": "a"}, "sk": {"S": "new"}}}},
            {"Update": {"TableName": table, "Key": {"pk": {"S": "a"}, "sk": {"S": "count"}},
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": "a"}, "sk": {"S": "exists"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    assert _item(table, "a", "new") is None
    assert _item(table, "a", "count") is None


def test_successful_transaction_writes_everything(stack):
    table = stack.outputs["MailboxTableName"]
    client = boto3.client("dynamodb", region_name=REGION)
    for _ in range(2):
        client.transact_write_items(TransactItems=[
            {"Update": {"TableName": table, "Key": {"pk": {"S": "b"}, "sk": {"S": "count"}},
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        ])
    assert _item(table, "b", "count")["n"] == {"N": "2"}
