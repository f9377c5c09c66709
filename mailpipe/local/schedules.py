"""EventBridge schedules, as they invoke functions: each rule of the template with a rate
expression (SAM's `Schedule` events) becomes a timer that invokes its function with the
event EventBridge sends, once shortly after the stack starts and then at its rate.

What a running stack schedules is kept in its state dir (schedules_file), so that
`mailpipe schedule run NAME` can invoke the same function on the same event now, in a
worker of its own (functions.LocalFunction), as a person or a test asks.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailpipe.local.background import BackgroundLoop

if TYPE_CHECKING:
    # provision reads the rules with this module: its own imports come when used.
    from mailpipe.local.functions import LocalFunction
    from mailpipe.local.provision import FunctionSpec

log = logging.getLogger("mailpipe.local")

# The first run comes this long after the stack is up: soon enough to see it work, late
# enough not to compete with the stack's start.
FIRST_RUN_SECONDS = 10.0
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int:
    """The period of an EventBridge rate expression (`rate(1 day)`); cron expressions do
    not run locally."""
    match = _RATE.match(expression.strip())
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"only rate(N minutes|hours|days) schedules run locally, not "
                         f"{expression!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


@dataclass(frozen=True)
class ScheduleSource:
    name: str  # the function's folder (functions/<name>/): what `mailpipe schedule` takes
    function: str  # logical id
    rule_arn: str
    account: str
    expression: str
    input: str | None  # the target's constant Input (JSON), sent instead of the event


def schedule_sources(rule_arn: str, properties: dict[str, Any],
                     functions: dict[str, tuple[str, str]], account: str) -> list[ScheduleSource]:
    """An AWS::Events::Rule's targets that are functions here (`functions`: logical id by
    ARN, with the function's folder name); a disabled rule has none."""
    if "ScheduleExpression" not in properties or properties.get("State") == "DISABLED":
        return []
    expression = str(properties["ScheduleExpression"])
    rate_seconds(expression)  # refused now, not when the timer first fires
    return [ScheduleSource(name=functions[target["Arn"]][1],
                           function=functions[target["Arn"]][0], rule_arn=rule_arn,
                           account=account, expression=expression, input=target.get("Input"))
            for target in properties.get("Targets", []) if target["Arn"] in functions]


def scheduled_event(source: ScheduleSource, region: str, now: datetime | None = None
                    ) -> dict[str, Any]:
    """What EventBridge sends a function when its rule fires."""
    if source.input is not None:
        return dict(json.loads(source.input))
    at = (now or datetime.now(UTC)).astimezone(UTC)
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": source.account,
            "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
            "resources": [source.rule_arn], "detail": {}}


class ScheduleTimer(BackgroundLoop):
    """Invokes the function on its schedule until stopped; a failed run is logged, and the
    next comes at its time, as with EventBridge (whose retries the next run stands for)."""

    def __init__(self, source: ScheduleSource, function: LocalFunction, region: str,
                 first_run_seconds: float = FIRST_RUN_SECONDS) -> None:
        super().__init__(f"schedule-{source.name}")
        self._source = source
        self._function = function
        self._region = region
        self._first = first_run_seconds

    def _run(self) -> None:
        from mailpipe.local.functions import FunctionError

        wait = self._first
        while not self._stop.wait(wait):
            try:
                result = self._function.invoke(scheduled_event(self._source, self._region))
                log.info("%s ran on its schedule (%s): %s", self._source.name,
                         self._source.expression, json.dumps(result))
            except FunctionError as exc:
                log.warning("%s failed on its schedule: %s", self._source.name, exc.summary)
            wait = rate_seconds(self._source.expression)


def schedules_file(state_dir: Path, aws_port: int) -> Path:
    return state_dir / f"schedules-{aws_port}.json"


def write_schedules(path: Path, sources: list[ScheduleSource],
                    functions: dict[str, FunctionSpec]) -> None:
    """Each schedule with its function's spec: what a command needs to invoke it."""
    document = []
    for source in sources:
        spec = functions[source.function]
        document.append({**asdict(source), "spec": {
            **asdict(spec), "code_dir": str(spec.code_dir),
            "layer_dirs": [str(layer) for layer in spec.layer_dirs]}})
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(document))
    partial.replace(path)  # a reader never sees half a file


def read_schedules(path: Path) -> list[tuple[ScheduleSource, FunctionSpec]]:
    from mailpipe.local.provision import FunctionSpec

    found = []
    for entry in json.loads(path.read_text()):
        spec = entry.pop("spec")
        found.append((ScheduleSource(**entry), FunctionSpec(
            **{**spec, "code_dir": Path(spec["code_dir"]),
               "layer_dirs": tuple(Path(layer) for layer in spec["layer_dirs"])})))
    return found
