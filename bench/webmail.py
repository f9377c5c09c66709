"""The webmail in Chromium against `mailpipe up`, on a 10,000-message Inbox beside a
10-message one in the same run (the baseline: what the folder's size costs).

    python bench/webmail.py [--messages 10000] [--runs 5]

The large Inbox is filed straight into the stack's moto through the mailbox port (each
message its own S3 object and items, as filing makes them): through SMTP it would take
the local runtime ten minutes. Then, in headless Chromium (Debian's), signed in:

- bytes transferred for everything before the first message list (the app's files, as
  sent: gzip, as CloudFront compresses them), and the API's answers apart;
- time to the first message list: a reload, until the first row is on the screen;
- time to open a message: a click on a row, until its text is on the screen.

Times are medians of --runs; they include moto (one Python process standing in for
DynamoDB and S3), so they are for comparing the two Inboxes, not a forecast of AWS.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailpipe.local.launcher import StackProcess, start_stack  # noqa: E402
from mailpipe.local.stack import aws_environment, outputs_file  # noqa: E402
from tests.webmail_support import Watched, chromium, sign_in  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from direct_filing import file_directly  # noqa: E402

LARGE, SMALL, PASSWORD = "large@example.test", "small@example.test", "bench-password"


def _message(number: int, to: str) -> bytes:
    return (f"From: Sender {number % 97} <sender{number % 97}@crepes.fr>\r\n"
            f"To: {to}\r\nSubject: message {number}\r\n"
            f"Date: Fri, 27 Nov 2026 10:{number // 60 % 60:02d}:{number % 60:02d} +0000\r\n"
            f"Message-ID: <{number}.{to}>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
            + f"line {number} of a message body of about two kilobytes\r\n" * 40).encode()


def fill(stack: StackProcess, counts: dict[str, int]) -> None:
    outputs = json.loads(outputs_file(stack.state_dir, stack.aws_port).read_text())
    os.environ.update(aws_environment(f"http://127.0.0.1:{stack.aws_port}"))
    os.environ.update({
        "MAILPIPE_BUCKET": outputs["MessageBucketName"],
        "MAILPIPE_TABLE": outputs["MailboxTableName"],
        "MAILPIPE_USER_POOL_ID": outputs["UserPoolId"],
        "MAILPIPE_USER_POOL_CLIENT_ID": outputs["UserPoolClientId"],
        "MAILPIPE_DOMAINS": "example.test",
    })
    from mailcore.wiring import aws_adapters

    adapters = aws_adapters()
    for account, count in counts.items():
        started = time.perf_counter()
        file_directly(adapters, account, count, functools.partial(_message, to=account))
        print(f"{account}: {count:,} messages filed in {time.perf_counter() - started:.0f} s",
              flush=True)


def measure(browser: Any, stack: StackProcess, account: str, runs: int) -> dict[str, Any]:
    origin = f"http://127.0.0.1:{stack.http_port}"
    watched = Watched(browser, origin)
    page = watched.page
    app_bytes: dict[str, int] = {}
    api_bytes: dict[str, int] = {}

    def count(response: Any) -> None:
        size = int(response.headers.get("content-length") or 0)
        target = api_bytes if "/v1/" in response.url else app_bytes
        target[response.url] = size

    page.on("response", count)
    sign_in(page, origin, account, PASSWORD)
    first_row = page.get_by_role("list", name="Messages").get_by_role("button").first
    first_row.wait_for()
    # A cold load, signed in: the app's files and the API's answers up to the first list.
    app_bytes.clear()
    api_bytes.clear()
    page.reload()
    first_row.wait_for()
    sizes = (sum(app_bytes.values()), len(app_bytes), sum(api_bytes.values()), len(api_bytes))

    to_list = []
    for _ in range(runs):
        started = time.perf_counter()
        page.reload()
        first_row.wait_for()
        to_list.append(time.perf_counter() - started)
    to_open = []
    rows = page.get_by_role("list", name="Messages").get_by_role("button")
    for index in range(runs):
        subject = re.search(r"message \d+", rows.nth(index + 1).inner_text()).group(0)  # type: ignore[union-attr]
        started = time.perf_counter()
        rows.nth(index + 1).click()
        page.get_by_role("article").get_by_text(f"line {subject.split()[1]} of").first.wait_for()
        to_open.append(time.perf_counter() - started)
    watched.close()
    return {"sizes": sizes, "to_list": statistics.median(to_list),
            "to_open": statistics.median(to_open)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    arguments = parser.parse_args()
    stack = start_stack(["example.test"], {LARGE: PASSWORD, SMALL: PASSWORD})
    try:
        fill(stack, {SMALL: 10, LARGE: arguments.messages})
        with chromium() as browser:
            small = measure(browser, stack, SMALL, arguments.runs)
            large = measure(browser, stack, LARGE, arguments.runs)
    finally:
        stack.stop()
    app, files, _, _ = large["sizes"]
    print(f"\nWebmail in headless Chromium on `mailpipe up`; medians of {arguments.runs}. The "
          f"10-message Inbox is the baseline, measured in the same run.")
    print(f"App files before the first message list: {files} files, {app / 1024:.1f} KiB "
          f"as sent (gzip; target under 100 KB)")
    print("| | 10-message Inbox | "
          f"{arguments.messages:,}-message Inbox |")
    print("|---|---:|---:|")
    print(f"| API answers before the first list | {small['sizes'][2] / 1024:.1f} KiB in "
          f"{small['sizes'][3]} | {large['sizes'][2] / 1024:.1f} KiB in {large['sizes'][3]} |")
    print(f"| time to the first message list (reload) | {small['to_list']:.3f} s | "
          f"{large['to_list']:.3f} s |")
    print(f"| time to open a message | {small['to_open']:.3f} s | {large['to_open']:.3f} s |")


if __name__ == "__main__":
    main()
