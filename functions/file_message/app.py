"""SQS (S3 ObjectCreated notifications) -> file each stored message into its recipients' Inboxes."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailcore.adapters.aws.wiring import aws_adapters
from mailcore.domain.message import PARSE_SECONDS
from mailcore.errors import TransientFailure
from mailcore.services.filing import file_inbound

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)
# Fetching, parsing (at most PARSE_SECONDS) and filing one message, with room to spare.
SECONDS_PER_MESSAGE = PARSE_SECONDS + 5


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    try:
        file_record(record, lambda_context)
    except Exception:
        # The batch processor reports the record failed without saying why.
        logger.exception("filing failed; the message comes back after the visibility timeout")
        raise


def file_record(record: SQSRecord, lambda_context: LambdaContext) -> None:
    # A timed-out invocation fails its whole batch; a record that cannot finish in time
    # fails alone instead, and comes back after the queue's visibility timeout.
    if lambda_context.get_remaining_time_in_millis() < SECONDS_PER_MESSAGE * 1000:
        raise TransientFailure("not enough time left in this invocation")
    notification = S3Event(json.loads(record.body))
    adapters = aws_adapters()
    # s3:TestEvent (sent when notifications are configured) has no Records.
    records = notification.records if "Records" in notification.raw_event else ()
    filed = 0
    for s3_record in records:
        # Keys arrive URL-encoded ("+" for space) in notifications.
        key = unquote_plus(s3_record.s3.get_object.key)
        logger.append_keys(s3_key=key)
        faults = adapters.filing_faults  # None unless a durability test configured them
        if faults:
            faults.before_filing(key)
        result = file_inbound(key, adapters.store, adapters.mailboxes, adapters.domains,
                              adapters.outgoing, references=adapters.references)
        if faults:
            faults.after_filing(key)
        logger.info("message filed", message_id=result.message_id,
                    recipients=len(result.filed_for), duplicates=len(result.already_filed_for),
                    queued=len(result.queued_for))
        filed += len(result.filed_for)
    metrics.add_metric("MessagesFiled", MetricUnit.Count, filed)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
