"""SQS (S3 ObjectCreated notifications) -> file each stored message into its recipients'
Inboxes (or Junk folders, as each recipient's junk filter decides)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

# Records and notifications read as the dicts they are: powertools' S3Event and SQSRecord
# come with utilities.data_classes, whose __init__ imports every event class of
# powertools (12 ms of this cold start; bench/cold_start.py, issue 25 item 16).
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from mailcore.errors import TransientFailure
from mailcore.parsing.limits import PARSE_LIMITS
from mailcore.services.filing import FilingResult, file_inbound_together
from mailcore.wiring import aws_adapters

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
# Fetching, parsing (at most its parse_seconds) and filing one message, with room to spare.
SECONDS_PER_MESSAGE = PARSE_LIMITS.parse_seconds + 5
FAILED = "filing failed; the message comes back after the visibility timeout"


def stored_keys(record: dict[str, Any]) -> list[str]:
    """The keys of the messages an SQS record's S3 notification names."""
    notification = json.loads(record["body"])
    # s3:TestEvent (sent when notifications are configured) has no Records. `in`, not
    # .get: a body that is JSON but no object names no key, as it did through S3Event.
    records = notification["Records"] if "Records" in notification else ()  # noqa: SIM401
    # Keys arrive URL-encoded ("+" for space) in notifications.
    return [unquote_plus(s3_record["s3"]["object"]["key"]) for s3_record in records]


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Files the batch's messages together (their first copies share one write per
    folder) and reports the records that failed, which come back after the queue's
    visibility timeout (ReportBatchItemFailures)."""
    adapters = aws_adapters()
    failed: list[str] = []
    keys_of: dict[str, list[str]] = {}
    for record in event["Records"]:
        try:
            keys_of[record["messageId"]] = stored_keys(record)
        except Exception:
            logger.exception(FAILED, sqs_message_id=record["messageId"])
            failed.append(record["messageId"])

    def before_each(key: str) -> None:
        # A timed-out invocation fails its whole batch; a message that cannot finish in
        # time fails alone instead, and comes back after the queue's visibility timeout.
        if context.get_remaining_time_in_millis() < SECONDS_PER_MESSAGE * 1000:
            raise TransientFailure("not enough time left in this invocation")

    # A notification SQS delivered twice in one batch: its message is filed once.
    everything = list(dict.fromkeys(key for keys in keys_of.values() for key in keys))
    outcomes = dict(zip(everything, file_inbound_together(
        everything, adapters.store, adapters.mailboxes, adapters.domains, adapters.outgoing,
        references=adapters.references, views=adapters.imap_views, before_each=before_each,
        junk=adapters.junk_filing), strict=True))
    filed = 0
    reported: set[str] = set()  # a key two records name is logged and counted once
    for message_id, keys in keys_of.items():
        try:
            for key in keys:
                if key not in reported:
                    filed += _report(key, outcomes[key])
                    reported.add(key)
        except Exception:
            logger.exception(FAILED, sqs_message_id=message_id)
            failed.append(message_id)
    metrics.add_metric("MessagesFiled", MetricUnit.Count, filed)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _report(key: str, outcome: FilingResult | Exception) -> int:
    """How many copies the key's message had filed now; raises what stopped it."""
    logger.append_keys(s3_key=key)
    if isinstance(outcome, Exception):
        raise outcome
    logger.info("message filed", message_id=outcome.message_id,
                recipients=len(outcome.filed_for), duplicates=len(outcome.already_filed_for),
                queued=len(outcome.queued_for))
    return len(outcome.filed_for)
