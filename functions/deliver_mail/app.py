"""SQS outgoing queue -> SMTP delivery to the next hop, retries by visibility timeout, DSNs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

# Neither powertools' batch utility nor its SQSRecord: the first imports asyncio for its
# async processor and, through utilities.data_classes, every event class of powertools;
# together 21 ms of this function's cold start, 0.15x of `import boto3` alone
# (bench/cold_start.py, issue 25 item 16). file_message walks its records alike.
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from mailcore.adapters.smtp_client import SmtpClientPool
from mailcore.delivery_wiring import delivery_adapters
from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.delivery_status import RecipientState
from mailcore.services.delivery import deliver_job
from mailcore.wiring import aws_adapters

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
# One pool per invocation: jobs of a batch for the same next hop share a connection.
_pool: SmtpClientPool | None = None


# What one job may take: connecting, EHLO, STARTTLS, AUTH and the transaction, each
# bounded by the SMTP client's timeout; a job that may not finish is not started.
SECONDS_PER_JOB = 60
FAILED = "delivery failed; the job comes back after the visibility timeout"


class DeliveryDeferred(Exception):
    """Leaves the job on the queue; its visibility timeout is the wait before the retry."""


def _retry_later(record: dict[str, Any], seconds: int) -> None:
    outgoing = aws_adapters().outgoing
    assert outgoing is not None  # the template gives this function the outgoing queue
    outgoing.queue.retry_later(record["receiptHandle"], seconds)


def record_handler(record: dict[str, Any], lambda_context: LambdaContext) -> None:
    """Delivers one SQS record's job; raising leaves the record on the queue."""
    assert _pool is not None
    adapters, delivery = aws_adapters(), delivery_adapters()
    job = DeliveryJob.from_json(record["body"])
    logger.append_keys(message_id=job.message_id, domain=job.domain)
    if lambda_context.get_remaining_time_in_millis() < SECONDS_PER_JOB * 1000:
        # Past the timeout the whole batch would fail and come back; this job alone
        # comes back at once instead, to the next invocation.
        _retry_later(record, 0)
        raise DeliveryDeferred("not enough time left in this invocation")
    outcome = deliver_job(
        job, attempt=int(record["attributes"]["ApproximateReceiveCount"]), now=datetime.now(UTC),
        store=adapters.store, hops=delivery.hops, sender=_pool, ledger=delivery.ledger,
        policy=delivery.policy, reporting_mta=adapters.settings.hostname,
        references=adapters.references, objects=adapters.store, transport=delivery.transport,
        suppressions=delivery.suppressions)
    for state in RecipientState:
        count = sum(status.state is state for status in outcome.statuses)
        if count:
            metrics.add_metric(f"Recipients{state.value.title()}", MetricUnit.Count, count)
    if outcome.retry_in is not None:
        _retry_later(record, max(1, int(outcome.retry_in.total_seconds())))
        raise DeliveryDeferred(f"retry in {outcome.retry_in}")


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Reports the records that failed or were deferred (ReportBatchItemFailures): they
    come back after their visibility timeout. A batch whose jobs are all deferred is a
    normal outcome, not a function error."""
    global _pool
    records = event.get("Records")
    if not records or not isinstance(records, list):
        raise ValueError("not an SQS event: no list of Records")
    _pool = delivery_adapters().new_pool(aws_adapters().settings.hostname)
    failed: list[dict[str, str]] = []
    try:
        for record in records:
            try:
                record_handler(record, context)
            except DeliveryDeferred:
                failed.append({"itemIdentifier": record["messageId"]})
            except Exception:
                logger.exception(FAILED, sqs_message_id=record["messageId"])
                failed.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failed}
    finally:
        metrics.add_metric("SmtpConnections", MetricUnit.Count, _pool.connections_opened)
        _pool.close()
        _pool = None
