"""Cost per million messages on AWS, from the requests a local run actually makes.

Starts the local stack in this process with its AWS requests metered (see
mailpipe/local/metering.py), then:
  inbound   N messages of 10 KiB to a hosted account over SMTP (port 25's path),
  outbound  N messages of 10 KiB submitted with AUTH (port 587's path) to a remote
            domain, delivered to Postfix's smtp-sink.
Each phase's requests, DynamoDB units, function invocations, their duration and the
bytes they log are divided by N and priced with AWS's published on-demand prices
(us-east-1, arm64, listed below). The fixed monthly cost of the always-on edge
(two Fargate tasks behind a Network Load Balancer) is given apart, then spread over
a monthly volume to compare with Amazon SES receiving.

What the local run cannot see is modelled and said so: S3's notification to SQS (one
SQS request per message, made by S3, billed to the queue's owner) and Lambda's idle
polling of its queues (long polls: a small fixed cost).

    python bench/cost_model.py [--messages 200] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

from mailcore.adapters.aws.dynamodb_keys import JOB_PREFIX, folder_key
from mailpipe.local import logs
from mailpipe.local.launcher import free_ports
from mailpipe.local.stack import LocalStack, StackOptions, outputs_file

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT, PASSWORD = "bob@example.test", "bench-password-1"
BODY = "\r\n".join(["x" * 78] * 128)  # 10 KiB

# AWS on-demand prices, us-east-1 (aws.amazon.com/<service>/pricing), as of 2026.
PRICES = {
    "s3_put_per_1k": 0.005,          # PUT, COPY, POST, LIST
    "s3_get_per_1k": 0.0004,         # GET, HEAD and others
    "sqs_per_million": 0.40,         # standard queue, per 64 KB request
    "dynamodb_wru_per_million": 0.625,
    "dynamodb_rru_per_million": 0.125,
    "lambda_requests_per_million": 0.20,
    "lambda_gb_second_arm": 0.0000133334,
    "logs_ingest_per_gb": 0.50,
    "xray_traces_per_million": 5.00,
    "s3_storage_gb_month": 0.023,
    "fargate_vcpu_hour_arm": 0.03238,
    "fargate_gb_hour_arm": 0.00356,
    "nlb_hour": 0.0225,
    "nlb_lcu_hour": 0.006,
    "public_ipv4_hour": 0.005,
    "ses_inbound_per_1k": 0.10,
    "ses_inbound_chunk_per_1k": 0.09,  # per 256 KB incoming chunk
}
LAMBDA_MEMORY_GB = 0.5      # the template's MemorySize
XRAY_SAMPLED = 0.05         # X-Ray's default rule at volume: 1/s plus 5 %
HOURS_PER_MONTH = 730
EDGE_TASKS, TASK_VCPU, TASK_GB = 2, 0.25, 1.0  # EdgeDesiredCount, Cpu 256, Memory 1024
OBSERVER = {"aws_access_key_id": "bench-observer", "aws_secret_access_key": "x"}


def _delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    def minus(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
        return {key: value - b.get(key, 0) for key, value in a.items() if value - b.get(key, 0)}
    return {
        "requests": minus(after["requests"], before["requests"]),
        "dynamodb_write_units": after["dynamodb_write_units"] - before["dynamodb_write_units"],
        "dynamodb_read_units": after["dynamodb_read_units"] - before["dynamodb_read_units"],
        "invocations": minus(after["invocations"], before["invocations"]),
        "duration_ms": minus(after["duration_ms"], before["duration_ms"]),
        "log_bytes": minus(after["log_bytes"], before["log_bytes"]),
    }


def _price_per_million(usage: dict[str, Any], messages: int) -> tuple[dict[str, float], float]:
    """Dollars per million messages, by line."""
    per = 1_000_000 / messages
    requests = usage["requests"]
    s3_puts = sum(count for name, count in requests.items()
                  if name.startswith("s3:") and name.split(":")[1] in
                  {"PutObject", "ListObjects", "POST bucket", "DeleteObjects"})
    s3_gets = sum(count for name, count in requests.items()
                  if name.startswith("s3:") and name.split(":")[1] in {"GetObject", "HeadObject"})
    # S3's own notification to SQS: one SendMessage per stored message.
    sqs = sum(count for name, count in requests.items()
              if name.startswith("sqs:") and name != "sqs:ReceiveMessage(empty)")
    sqs += messages
    invocations = sum(usage["invocations"].values())
    gb_seconds = sum(usage["duration_ms"].values()) / 1000 * LAMBDA_MEMORY_GB
    lines = {
        "S3 PUT/LIST": s3_puts * per / 1000 * PRICES["s3_put_per_1k"],
        "S3 GET/HEAD": s3_gets * per / 1000 * PRICES["s3_get_per_1k"],
        "SQS requests": sqs * per / 1e6 * PRICES["sqs_per_million"],
        "DynamoDB writes": usage["dynamodb_write_units"] * per / 1e6
        * PRICES["dynamodb_wru_per_million"],
        "DynamoDB reads": usage["dynamodb_read_units"] * per / 1e6
        * PRICES["dynamodb_rru_per_million"],
        "Lambda requests": invocations * per / 1e6 * PRICES["lambda_requests_per_million"],
        "Lambda duration": gb_seconds * per * PRICES["lambda_gb_second_arm"],
        "CloudWatch Logs": sum(usage["log_bytes"].values()) * per / 1e9
        * PRICES["logs_ingest_per_gb"],
        "X-Ray traces": invocations * XRAY_SAMPLED * per / 1e6
        * PRICES["xray_traces_per_million"],
    }
    return lines, sum(lines.values())


def _fixed_monthly() -> dict[str, float]:
    fargate = EDGE_TASKS * (TASK_VCPU * PRICES["fargate_vcpu_hour_arm"]
                            + TASK_GB * PRICES["fargate_gb_hour_arm"]) * HOURS_PER_MONTH
    return {
        "Fargate (2 tasks, 0.25 vCPU, 1 GB, arm64)": fargate,
        "Network Load Balancer (hour + 1 NLCU)": (PRICES["nlb_hour"] + PRICES["nlb_lcu_hour"])
        * HOURS_PER_MONTH,
        "Public IPv4 (2 NLB + 2 task addresses)": 4 * PRICES["public_ipv4_hour"]
        * HOURS_PER_MONTH,
    }


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    messages = arguments.messages

    state = Path(tempfile.mkdtemp())
    (sink_port, smtp_port, submission_port, http_port, aws_port, imap_port,
     imaps_port) = free_ports(7)
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{sink_port}", "100"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    options = StackOptions(domains=["example.test"], users=[(ACCOUNT, PASSWORD)],
                           smtp_port=smtp_port, submission_port=submission_port,
                           http_port=http_port, aws_port=aws_port, imap_port=imap_port,
                           imaps_port=imaps_port, state_dir=state,
                           mx={"remote.test": f"127.0.0.1:{sink_port}"})
    # The stack's log lines are counted by the meter (CloudWatch Logs bytes), not printed.
    logs.emit = lambda source, line: None
    stack = LocalStack(options)
    stack.start()
    try:
        outputs = json.loads(outputs_file(state, options.aws_port).read_text())
        aws = {"endpoint_url": stack.endpoint, "region_name": "us-east-1", **OBSERVER}
        stack.meter.ignored_access_keys.add(OBSERVER["aws_access_key_id"])
        dynamodb = boto3.client("dynamodb", **aws)

        def inbox_total() -> int:
            item = dynamodb.get_item(TableName=outputs["MailboxTableName"],
                                     Key=folder_key(ACCOUNT, "Inbox")).get("Item")
            return int(item["total"]["N"]) if item else 0

        def delivered() -> int:
            pages = dynamodb.get_paginator("scan").paginate(
                TableName=outputs["MailboxTableName"], FilterExpression="begins_with(pk, :j)",
                ExpressionAttributeValues={":j": {"S": JOB_PREFIX}})
            return sum(str(item.get("statuses", {})).count("'delivered'")
                       for page in pages for item in page["Items"])

        time.sleep(3)  # let start-up settle (pollers warm, functions loaded)
        results: dict[str, Any] = {}

        before = stack.meter.snapshot()
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", options.smtp_port) as client:
            client.ehlo("crepes.fr")
            for number in range(messages):
                client.sendmail("alice@crepes.fr", [ACCOUNT],
                                f"From: alice@crepes.fr\r\nTo: {ACCOUNT}\r\n"
                                f"Subject: inbound {number}\r\n\r\n{BODY}\r\n")
        _wait(lambda: inbox_total() >= messages, 300, "inbound filing")
        time.sleep(2)
        results["inbound"] = _delta(stack.meter.snapshot(), before)
        results["inbound"]["seconds"] = time.perf_counter() - started

        before = stack.meter.snapshot()
        started = time.perf_counter()
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", options.submission_port) as client:
            client.starttls(context=context)
            client.login(ACCOUNT, PASSWORD)
            for number in range(messages):
                client.sendmail(ACCOUNT, [f"user{number}@remote.test"],
                                f"From: {ACCOUNT}\r\nTo: user{number}@remote.test\r\n"
                                f"Subject: outbound {number}\r\n\r\n{BODY}\r\n")
        _wait(lambda: delivered() >= messages, 300, "outbound delivery")
        time.sleep(2)
        results["outbound"] = _delta(stack.meter.snapshot(), before)
        results["outbound"]["seconds"] = time.perf_counter() - started
    finally:
        stack.stop()
        sink.terminate()
        shutil.rmtree(state, ignore_errors=True)

    print(f"{messages} messages of 10 KiB per direction; prices: us-east-1 on-demand, arm64\n")
    for direction, usage in results.items():
        print(f"{direction}: per message, as measured")
        for name, count in sorted(usage["requests"].items()):
            print(f"  {name:<36} {count / messages:8.3f}")
        print(f"  {'DynamoDB write request units':<36} "
              f"{usage['dynamodb_write_units'] / messages:8.3f}")
        print(f"  {'DynamoDB read request units':<36} "
              f"{usage['dynamodb_read_units'] / messages:8.3f}")
        for function, count in sorted(usage["invocations"].items()):
            print(f"  {'Lambda ' + function:<36} {count / messages:8.3f} invocations, "
                  f"{usage['duration_ms'][function] / messages:6.1f} ms per message")
        print(f"  {'log bytes':<36} {sum(usage['log_bytes'].values()) / messages:8.0f}")
    print()
    totals = {}
    print("| per million messages (USD) | inbound | outbound |")
    print("|---|---:|---:|")
    priced = {direction: _price_per_million(usage, messages)
              for direction, usage in results.items()}
    for line in priced["inbound"][0]:
        print(f"| {line} | {priced['inbound'][0][line]:.2f} | {priced['outbound'][0][line]:.2f} |")
    for direction in priced:
        totals[direction] = priced[direction][1]
    print(f"| **total** | **{totals['inbound']:.2f}** | **{totals['outbound']:.2f}** |")
    fixed = _fixed_monthly()
    print("\nfixed monthly cost of the always-on edge")
    for name, dollars in fixed.items():
        print(f"  {name:<48} {dollars:7.2f}")
    fixed_total = sum(fixed.values())
    print(f"  {'total':<48} {fixed_total:7.2f}")
    ses = 1000 * (PRICES["ses_inbound_per_1k"] + PRICES["ses_inbound_chunk_per_1k"])
    print(f"\nAmazon SES receiving, 10 KiB message (1 chunk): {ses:.2f} USD per million")
    print("| inbound messages per month | mailpipe USD (fixed + variable) | SES USD "
          "| SES / mailpipe |")
    print("|---:|---:|---:|---:|")
    for volume in (100_000, 1_000_000, 10_000_000, 100_000_000):
        ours = fixed_total + totals["inbound"] * volume / 1e6
        theirs = ses * volume / 1e6
        print(f"| {volume:,} | {ours:,.2f} | {theirs:,.2f} | {theirs / ours:.1f}x |")
    print(f"\nvariable cost alone: SES / mailpipe = {ses / totals['inbound']:.1f}x")
    if arguments.json:
        arguments.json.write_text(json.dumps({"messages": messages, "usage": results,
                                              "per_million": totals, "fixed": fixed,
                                              "prices": PRICES}, indent=2))


if __name__ == "__main__":
    main()
