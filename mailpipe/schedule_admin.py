"""`mailpipe schedule`: the functions a local stack runs on a schedule (template.yaml's
Schedule events), listed, or one of them run now, on the event its schedule sends, as the
stack's own timer runs it (mailpipe/local/schedules.py)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

from mailpipe.local.functions import FunctionError, LocalFunction
from mailpipe.local.schedules import read_schedules, scheduled_event, schedules_file
from mailpipe.local.stack import DEFAULT_PORTS, REGION, aws_environment

LOG_LINES_ON_FAILURE = 20


def add_parser(commands: Any, add_stack_options: Callable[[argparse.ArgumentParser], None]
               ) -> None:
    schedule = commands.add_parser(
        "schedule", help="functions run on a schedule (e.g. expire_junk, daily): list, run now")
    actions = schedule.add_subparsers(dest="schedule_command", required=True)
    listing = actions.add_parser("list", help="one line per schedule: name, rate, function")
    add_stack_options(listing)
    run_now = actions.add_parser("run", help="invoke a scheduled function now, on the event "
                                 "its schedule sends; prints what it answered")
    run_now.add_argument("name", help="the function's folder name, e.g. expire_junk")
    add_stack_options(run_now)


def run(arguments: argparse.Namespace, outputs: dict[str, str], client: Any) -> int:
    """Errors are one line on stderr: status 2 for a name that is not scheduled, 1 else."""
    if arguments.stack:
        print("mailpipe: a deployed stack runs its schedules in AWS; to run one now, "
              "invoke its function (aws lambda invoke)", file=sys.stderr)
        return 1
    # As the command found the stack (mailpipe.cli._ports): its port, or the default moved.
    aws_port = arguments.aws_port or DEFAULT_PORTS["aws_port"] + arguments.port_offset
    path = schedules_file(arguments.state_dir, aws_port)
    if not path.exists():
        print("mailpipe: the running stack lists no schedules (started by an older mailpipe?)",
              file=sys.stderr)
        return 1
    schedules = {source.name: (source, spec) for source, spec in read_schedules(path)}
    if arguments.schedule_command == "list":
        for name, (source, spec) in sorted(schedules.items()):
            print(f"{name} {source.expression} {spec.logical_id}")
        return 0
    if arguments.name not in schedules:
        print(f"mailpipe schedule run: error: no schedule named {arguments.name!r} (scheduled: "
              f"{', '.join(sorted(schedules)) or 'none'})", file=sys.stderr)
        return 2
    source, spec = schedules[arguments.name]
    endpoint = f"http://127.0.0.1:{aws_port}"
    logged: deque[str] = deque(maxlen=LOG_LINES_ON_FAILURE)
    function = LocalFunction(spec, {**os.environ, **aws_environment(endpoint)},
                             lambda _source, line: logged.append(line), concurrency=1)
    try:
        result = function.invoke(scheduled_event(source, REGION))
    except FunctionError as exc:
        print(f"mailpipe: {arguments.name} failed: {exc.summary} (its last log lines: "
              f"{' | '.join(logged)})", file=sys.stderr)
        return 1
    finally:
        function.stop()
    print(json.dumps(result))
    return 0
