"""SQS outgoing queue -> SMTP delivery to the next hop, retries by visibility timeout, DSNs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailcore.adapters.aws.delivery_wiring import delivery_adapters
from mailcore.adapters.aws.wiring import aws_adapters
from mailcore.adapters.smtp_client import SmtpClientPool
from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.delivery_status import RecipientState
from mailcore.services.delivery import deliver_job

logger = Logger()
metrics = Metrics()
# A batch whose jobs are all deferred is a normal outcome, not a function error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# One pool per invocation: jobs of a batch for the same next hop share a connection.
_pool: SmtpClientPool | None = None


# What one job may take: connecting, EHLO, STARTTLS, AUTH and the transaction, each
# bounded by the SMTP client's timeout; a job that may not finish is not started.
SECONDS_PER_JOB = 60


class DeliveryDeferred(Exception):
    """Leaves the job on the queue; its visibility timeout is the wait before the retry."""


def _retry_later(record: SQSRecord, seconds: int) -> None:
    outgoing = aws_adapters().outgoing
    assert outgoing is not None  # the template gives this function the outgoing queue
    outgoing.queue.retry_later(record.receipt_handle, seconds)


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    assert _pool is not None
    adapters, delivery = aws_adapters(), delivery_adapters()
    job = DeliveryJob.from_json(record.body)
    logger.append_keys(message_id=job.message_id, domain=job.domain)
    if lambda_context.get_remaining_time_in_millis() < SECONDS_PER_JOB * 1000:
        # Past the timeout the whole batch would fail and come back; this job alone
        # comes back at once instead, to the next invocation.
        _retry_later(record, 0)
        raise DeliveryDeferred("not enough time left in this invocation")
    outcome = deliver_job(
        job, attempt=int(record.attributes.approximate_receive_count), now=datetime.now(UTC),
        store=adapters.store, hops=delivery.hops, sender=_pool, ledger=delivery.ledger,
        policy=delivery.policy, reporting_mta=adapters.settings.hostname,
        references=adapters.references, objects=adapters.store)
    for state in RecipientState:
        count = sum(status.state is state for status in outcome.statuses)
        if count:
            metrics.add_metric(f"Recipients{state.value.title()}", MetricUnit.Count, count)
    if outcome.retry_in is not None:
        _retry_later(record, max(1, int(outcome.retry_in.total_seconds())))
        raise DeliveryDeferred(f"retry in {outcome.retry_in}")


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    global _pool
    _pool = delivery_adapters().new_pool(aws_adapters().settings.hostname)
    try:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        metrics.add_metric("SmtpConnections", MetricUnit.Count, _pool.connections_opened)
        _pool.close()
        _pool = None
