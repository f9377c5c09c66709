"""Per-recipient delivery status on the delivery job's item (dynamodb_keys.job_key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.adapters.aws.dynamodb_keys import JOB_PREFIX, job_key, job_of_key, job_pk
from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.delivery_status import FINAL_STATES, RecipientState, RecipientStatus
from mailcore.errors import StorageUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class JobRecord:
    message_id: str
    domain: str
    statuses: dict[str, RecipientStatus]
    job_json: str | None  # the queued job itself, to queue it again

    @property
    def pending(self) -> bool:
        return any(status.state not in FINAL_STATES for status in self.statuses.values())


class DynamoDeliveryLedger:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def was_queued(self, message_id: str, domain: str) -> bool:
        try:
            return "Item" in self._client.get_item(TableName=self._table,
                                                   Key=job_key(message_id, domain),
                                                   ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("reading delivery job failed") from exc

    def record_queued(self, job: DeliveryJob) -> None:
        try:
            # An update, not a put: the job is queued before it is recorded, so its first
            # attempt may already have recorded statuses, which a put would wipe. The empty
            # map lets each attempt record its statuses in one write (record).
            self._client.update_item(
                TableName=self._table, Key=job_key(job.message_id, job.domain),
                UpdateExpression="SET recipients = :recipients, queued_at = :queued_at, "
                                 "job = :job, statuses = if_not_exists(statuses, :empty)",
                ExpressionAttributeValues={
                    ":recipients": {"L": [{"S": rcpt} for rcpt in job.recipients]},
                    ":queued_at": {"S": job.queued_at.isoformat()},
                    ":job": {"S": job.to_json()},
                    ":empty": {"M": {}},
                })
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("recording delivery job failed") from exc

    def statuses(self, message_id: str, domain: str) -> dict[str, RecipientStatus]:
        try:
            item = self._client.get_item(TableName=self._table, Key=job_key(message_id, domain),
                                         ConsistentRead=True).get("Item", {})
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("reading delivery status failed") from exc
        return {rcpt: _status(rcpt, value["M"])
                for rcpt, value in item.get("statuses", {}).get("M", {}).items()}

    def statuses_of_message(self, message_id: str) -> dict[str, RecipientStatus]:
        try:
            response = self._client.query(
                TableName=self._table, KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": job_pk(message_id)}},
                ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("reading delivery status failed") from exc
        found: dict[str, RecipientStatus] = {}
        # A message has a job per destination domain: a handful of items.
        for item in response.get("Items", []):
            found.update(_job_statuses(item))
        return found

    def record(self, message_id: str, domain: str, statuses: list[RecipientStatus]) -> None:
        names = {f"#r{index}": status.recipient for index, status in enumerate(statuses)}
        values = {f":r{index}": {"M": _attributes(status)}
                  for index, status in enumerate(statuses)}
        assignments = ", ".join(f"statuses.#r{index} = :r{index}"
                                for index in range(len(statuses)))
        key = job_key(message_id, domain)
        try:
            try:
                self._client.update_item(
                    TableName=self._table, Key=key, UpdateExpression=f"SET {assignments}",
                    ExpressionAttributeNames=names, ExpressionAttributeValues=values)
                return
            except ClientError as exc:
                # DynamoDB sets a member only of a map that exists. The map is missing when
                # this attempt came before the job's record (record_queued), or the record
                # was written before record_queued made the map: make it, then set.
                if _code(exc) != "ValidationException":
                    raise
            self._client.update_item(
                TableName=self._table, Key=key,
                UpdateExpression="SET statuses = if_not_exists(statuses, :empty)",
                ExpressionAttributeValues={":empty": {"M": {}}})
            self._client.update_item(
                TableName=self._table, Key=key, UpdateExpression=f"SET {assignments}",
                ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable("recording delivery status failed") from exc

    def all_jobs(self) -> list[JobRecord]:
        """Every job and its statuses (for the operator's `mailpipe queue`; a Scan)."""
        jobs = []
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(TableName=self._table,
                                       FilterExpression="begins_with(pk, :job)",
                                       ExpressionAttributeValues={":job": {"S": JOB_PREFIX}}):
            for item in page.get("Items", []):
                message_id, domain = job_of_key(item["pk"]["S"], item["sk"]["S"])
                jobs.append(JobRecord(message_id, domain, _job_statuses(item),
                                      item.get("job", {}).get("S")))
        return jobs


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _job_statuses(item: dict[str, Any]) -> dict[str, RecipientStatus]:
    statuses = {rcpt: _status(rcpt, value["M"])
                for rcpt, value in item.get("statuses", {}).get("M", {}).items()}
    # A recipient without a recorded attempt is still waiting for its first.
    for entry in item.get("recipients", {}).get("L", []):
        statuses.setdefault(entry["S"], RecipientStatus(entry["S"], RecipientState.QUEUED))
    return statuses


def _attributes(status: RecipientStatus) -> dict[str, Any]:
    attributes: dict[str, Any] = {"state": {"S": status.state.value},
                                  "attempts": {"N": str(status.attempts)},
                                  "reply": {"S": status.reply}}
    if status.next_attempt:
        attributes["next_attempt"] = {"S": status.next_attempt}
    if status.remote_mta:
        attributes["remote_mta"] = {"S": status.remote_mta}
    return attributes


def _status(recipient: str, attributes: dict[str, Any]) -> RecipientStatus:
    return RecipientStatus(
        recipient=recipient,
        state=RecipientState(attributes["state"]["S"]),
        attempts=int(attributes.get("attempts", {"N": "0"})["N"]),
        reply=attributes.get("reply", {"S": ""})["S"],
        next_attempt=attributes.get("next_attempt", {}).get("S"),
        remote_mta=attributes.get("remote_mta", {}).get("S"),
    )
