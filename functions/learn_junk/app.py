"""SQS (junk lesson notices) -> reconcile each account's junk filter with what the notified
messages teach now (services.junk_learning)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

# Records read as the dicts they are, as file_message reads its own: powertools' batch
# utility and event classes cost its cold start 12-21 ms (bench/cold_start.py).
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from mailcore.adapters.aws.sqs_junk_lessons import LessonNotice
from mailcore.services.junk_learning import learn
from mailcore.wiring import aws_adapters

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
FAILED = "learning failed; the notice comes back after the visibility timeout"


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Learns the batch's notices account by account (each account's lessons in as few
    commits as they fit), and reports the records of an account that failed: they come
    back after the queue's visibility timeout (ReportBatchItemFailures)."""
    adapters = aws_adapters()
    failed: list[str] = []
    records_of: dict[str, list[str]] = defaultdict(list)
    notices: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for record in event["Records"]:
        try:
            notice = LessonNotice.from_json(record["body"])
        except Exception:
            logger.exception(FAILED, sqs_message_id=record["messageId"])
            failed.append(record["messageId"])
            continue
        records_of[notice.account].append(record["messageId"])
        notices[notice.account] += [(notice.account, each) for each in notice.message_ids]
    learned = unlearned = 0
    for account, account_notices in notices.items():
        try:
            result = learn(account_notices, adapters.mailboxes, adapters.store,
                           adapters.junk_filters)
        except Exception:
            logger.exception(FAILED, account=account, records=len(records_of[account]))
            failed += records_of[account]
            continue
        learned += result.learned
        unlearned += result.unlearned
    metrics.add_metric("JunkLessonsLearned", MetricUnit.Count, learned)
    metrics.add_metric("JunkLessonsUnlearned", MetricUnit.Count, unlearned)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
