"""10,000 messages from Postfix's smtp-source through `mailpipe up`: every one accepted,
filed once, and every queue drained; how long each part took, beside bare aiosmtpd.

The full size of tests/e2e/test_faults_and_load.py's load test (which `make test` runs with
300 messages), with the same checks: smtp-source gets a 250 for every message, the
account's Inbox ends with exactly N distinct messages (its total and its listing), the edge
logged "message accepted" N times, and every queue (dead-letter queues included) is empty
at the end; a failed check ends the run with an error. On moto as released filing slows
as the table grows (each transaction copies the tables it touches): give --messages to
measure a smaller load. Printed beside it, the baseline measured
in the same run: bare aiosmtpd (it stores nothing, bench/edge_throughput.py's case (a))
answering the same smtp-source, the bound of the accept rate on this machine.

    python bench/smtp_source_load.py [--messages 10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local_filing import ACCOUNT, PASSWORD, _smtp_source, bare_accepted  # bench/

from mailpipe.local.launcher import start_stack
from tests.e2e.api_client import ApiClient, wait_until
from tests.e2e.aws_support import Aws


def measure(messages: int) -> tuple[float, float, float]:
    """(seconds until every 250, until every message was filed, until every queue was
    empty), every check passed."""
    stack = start_stack(["example.test"], {ACCOUNT: PASSWORD})
    try:
        started = time.perf_counter()
        accepted = _smtp_source(messages, stack.smtp_port)
        client = ApiClient(stack, ACCOUNT, PASSWORD)
        wait_until(lambda: client.folder_total() >= messages, timeout=120 + messages,
                   interval=0.5, what=f"all {messages} messages filed")
        filed = time.perf_counter() - started
        time.sleep(2)  # a duplicate filed late would show in the checks below
        total, listed = client.folder_total(), client.messages()
        if not total == len(listed) == len({m["id"] for m in listed}) == messages:
            raise SystemExit(f"filed {total}, listed {len(listed)}, of {messages}")
        logged = sum("message accepted" in line for line in stack.output)
        if logged != messages:
            raise SystemExit(f"the edge logged {logged} accepted, of {messages}")
        wait_until(Aws(stack).empty, 120, interval=1, what="every queue empty")
        return accepted, filed, time.perf_counter() - started
    finally:
        if stack.stop() != 0:
            raise SystemExit("the stack did not stop cleanly")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    count = parser.parse_args().messages
    print(__doc__.split("\n\n")[0])
    bare = bare_accepted(count)
    accepted, filed, drained = measure(count)
    print(f"\n{count} messages of 10 KiB, smtp-source -s 20, one account, "
          f"{os.cpu_count()} cores; every check passed")
    print("| | all accepted (s) | accepted per second | all filed (s) | filed per second "
          "| queues empty (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| bare aiosmtpd (baseline) | {bare:.1f} | {count / bare:.0f} | | | |")
    print(f"| mailpipe up | {accepted:.1f} | {count / accepted:.0f} | {filed:.1f} | "
          f"{count / filed:.1f} | {drained:.1f} |")


if __name__ == "__main__":
    main()
