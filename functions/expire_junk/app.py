"""EventBridge schedule (daily) -> each account's Junk emptied of mail in Junk longer than
its junk_days (mailcore.services.junk_expiry), within this invocation's time."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from mailcore.services.junk_expiry import expire_all_junk
from mailcore.wiring import aws_adapters

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
# Stop starting removals this long before the timeout: one in flight (a transaction and a
# delete of the bytes) ends well within it, and the rest waits for the next run.
RESERVE_MS = 15_000


def scheduled_time(event: dict[str, Any]) -> datetime:
    """The instant the schedule fired (the event's `time`): the same cutoff however often
    one event is delivered. Now, for an event without one."""
    stamp = event.get("time")
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp).astimezone(UTC)
        except ValueError:
            logger.warning("scheduled event with an unreadable time", time=stamp)
    return datetime.now(UTC)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    adapters = aws_adapters()
    started = time.monotonic()
    run = expire_all_junk(
        adapters.directory, scheduled_time(event), adapters.mailboxes, adapters.store,
        adapters.junk_filters,
        out_of_time=lambda: context.get_remaining_time_in_millis() < RESERVE_MS)
    logger.info("junk expired", accounts=run.accounts, removed=run.removed, kept=run.kept,
                finished=run.finished, seconds=round(time.monotonic() - started, 3))
    metrics.add_metric("JunkMessagesExpired", MetricUnit.Count, run.removed)
    return {"accounts": run.accounts, "removed": run.removed, "finished": run.finished}
