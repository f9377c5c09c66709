"""Mailbox scale: what one API list page costs at 100, 10,000 and 100,000 stored messages.

The template's table is created in moto (in-process); each folder is loaded directly
with BatchWriteItem (the filing path is not what is measured here), then the api
function's handler answers GET /v1/mailboxes/Inbox/messages?limit=50 (first page and
a page 20 pages deep) and GET /v1/search. Every DynamoDB call the handler makes is
counted with its items read (ScannedCount for queries, 1 per item got). Latency is
the handler's wall time; the baseline is the 100-message folder in the same run.

moto evaluates a query on a secondary index by walking every item of the table, so
its latency grows with the table while DynamoDB's does not (it reads only the items
it returns); the items-read column is the figure that carries over to AWS.

    python bench/mailbox_scale.py [--sizes 100,10000,100000] [--requests 30]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
PAGE = 50


class Context:
    function_name = "serve_api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
    aws_request_id = "bench"


class ReadCounter:
    """Items read by DynamoDB calls, from botocore's after-call events."""

    def __init__(self) -> None:
        self.items = 0
        self.calls = 0

    def __call__(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls += 1
        if model.name in ("Query", "Scan"):
            self.items += int(parsed.get("ScannedCount", parsed.get("Count", 0)))
        elif model.name == "GetItem":
            self.items += 1 if "Item" in parsed else 0
        elif model.name == "BatchGetItem":
            self.items += sum(len(v) for v in parsed.get("Responses", {}).values())


def _load_api() -> Any:
    # As in Lambda, the function's own folder is on the path (its mailbox_api package).
    sys.path.insert(0, str(ROOT / "functions/serve_api"))
    spec = importlib.util.spec_from_file_location("api_app", ROOT / "functions/serve_api/app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _event(account: str, path: str, query: dict[str, str]) -> dict[str, Any]:
    event = json.loads((ROOT / "events/apigw_list_messages.json").read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["queryStringParameters"] = query
    event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    event.pop("pathParameters", None)
    event["requestContext"]["authorizer"]["jwt"]["claims"]["username"] = account
    return event


def _load_folder(table: str, account: str, size: int) -> None:
    from mailcore.adapters.aws.dynamodb_keys import folder_key
    from mailcore.adapters.aws.mailboxes.codec import message_item
    from mailcore.domain.ids import new_message_id
    from mailcore.domain.mailbox import StoredMessage
    from mailcore.parsing.bounded import summarise
    from mailcore.s3_keys import message_key

    client = boto3.client("dynamodb", region_name=REGION)
    start = datetime.now(UTC) - timedelta(seconds=size)
    batch: list[dict[str, Any]] = []
    for number in range(size):
        raw = (f"From: sender{number % 97}@crepes.fr\r\nTo: {account}\r\n"
               f"Subject: message {number} {'invoice' if number % 10 == 0 else 'hello'}\r\n"
               f"\r\nbody {number}\r\n").encode()
        message_id = new_message_id(int((start + timedelta(seconds=number)).timestamp() * 1000))
        stored = StoredMessage(account=account, message_id=message_id, folder="Inbox",
                               received_at=start + timedelta(seconds=number),
                               raw_key=message_key(message_id), size=len(raw),
                               accepted_id=message_id,
                               summary=summarise(raw))
        batch.append({"PutRequest": {"Item": message_item(stored, 0)}})
        if len(batch) == 25:
            client.batch_write_item(RequestItems={table: batch})
            batch = []
    if batch:
        client.batch_write_item(RequestItems={table: batch})
    client.put_item(TableName=table, Item={
        **folder_key(account, "Inbox"),
        "folder_name": {"S": "Inbox"}, "total": {"N": str(size)}, "unread": {"N": str(size)}})


def _measure(api: Any, counter: ReadCounter, account: str, path: str,
             query: dict[str, str], requests: int) -> dict[str, float]:
    latencies, items = [], []
    for _ in range(requests):
        counter.items = 0
        started = time.perf_counter()
        response = api.lambda_handler(_event(account, path, query), Context())
        latencies.append((time.perf_counter() - started) * 1000)
        assert response["statusCode"] == 200, response
        items.append(counter.items)
    latencies.sort()
    return {"p50_ms": statistics.median(latencies),
            "p99_ms": latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))],
            "items": max(items)}


def _cursor_deep(api: Any, account: str, pages: int) -> str | None:
    cursor = None
    for _ in range(pages):
        query = {"limit": str(PAGE)} | ({"cursor": cursor} if cursor else {})
        response = api.lambda_handler(_event(account, "/v1/mailboxes/Inbox/messages", query),
                                      Context())
        cursor = json.loads(response["body"])["cursor"]
    return cursor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.sizes.split(",")]

    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": REGION, "POWERTOOLS_LOG_LEVEL": "WARNING",
                       "POWERTOOLS_METRICS_NAMESPACE": "bench"})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    sys.path.insert(0, str(ROOT))
    from mailpipe.local.provision import provision

    results: list[dict[str, Any]] = []
    with mock_aws():
        provisioned = provision(ROOT, "bench", {"HostedDomains": "example.test"},
                                boto3.session.Session(region_name=REGION), region=REGION)
        for name, value in provisioned.functions["ServeApiFunction"].environment.items():
            if name.startswith("MAILPIPE_"):
                os.environ[name] = value
        api = _load_api()
        from mailcore.adapters.aws.clients import dynamodb_client

        counter = ReadCounter()
        dynamodb_client().meta.events.register("after-call.dynamodb", counter)
        table = os.environ["MAILPIPE_TABLE"]
        for size in sizes:
            account = f"scale{size}@example.test"
            loading = time.perf_counter()
            _load_folder(table, account, size)
            loaded_in = time.perf_counter() - loading
            first = _measure(api, counter, account, "/v1/mailboxes/Inbox/messages",
                             {"limit": str(PAGE)}, arguments.requests)
            deep_pages = min(20, size // PAGE - 1)
            cursor = _cursor_deep(api, account, deep_pages) if deep_pages > 0 else None
            deep = _measure(api, counter, account, "/v1/mailboxes/Inbox/messages",
                            {"limit": str(PAGE)} | ({"cursor": cursor} if cursor else {}),
                            arguments.requests)
            found = _measure(api, counter, account, "/v1/search",
                             {"q": "invoice", "limit": str(PAGE)}, max(5, arguments.requests // 3))
            results.append({"size": size, "first": first, "deep": deep, "search": found,
                            "deep_pages": deep_pages, "load_s": loaded_in})
            print(f"{size:>7} messages (loaded in {loaded_in:.0f} s): list page items read "
                  f"{first['items']} (page {deep_pages + 1}: {deep['items']}), "
                  f"p50 {first['p50_ms']:.1f} ms p99 {first['p99_ms']:.1f} ms; "
                  f"search items read {found['items']}, p50 {found['p50_ms']:.1f} ms",
                  flush=True)
    base = results[0]
    print(f"\nlist page of {PAGE}, figures per request; baseline = {base['size']} messages")
    print("| messages | items read (page 1) | items read (deep page) | p50 ms | p99 ms "
          "| p50 vs baseline | search items read | search p50 ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in results:
        print(f"| {row['size']:,} | {row['first']['items']} | {row['deep']['items']} "
              f"| {row['first']['p50_ms']:.1f} | {row['first']['p99_ms']:.1f} "
              f"| {row['first']['p50_ms'] / base['first']['p50_ms']:.2f}x "
              f"| {row['search']['items']} | {row['search']['p50_ms']:.1f} |")
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
