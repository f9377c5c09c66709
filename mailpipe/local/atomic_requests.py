"""moto's server as atomic as AWS: one DynamoDB request at a time, one SQS request or S3
write at a time.

moto's backends are plain Python objects that its server's threads share without a lock
(moto's FAQ, "Is Moto concurrency safe?": no), where the services promise more:
- DynamoDB applies an item's update at once, checks a condition and writes as one step,
  and runs transactions serializably. moto applies an update's clauses one by one (a reader
  saw a folder's counters before its name), checks a condition and then writes (two
  conditional writes on one item both succeeded), and copies whole tables before a
  transaction to restore them if it fails (a write in between was lost); a query walking a
  table while another thread added an item raised "dictionary changed size during
  iteration" (tests/functional/test_local_moto_server.py drives these races through the
  server, with threads).
- SQS is atomic per call. moto's delete rebuilds the queue's list of messages and assigns
  it back, so a message deleted or sent meanwhile came back or was lost. S3's event
  notifications are sends made inside S3's writes, so those take the same lock.

So each DynamoDB request runs alone, and so does each SQS request and S3 write (DynamoDB
shares no state with them: two locks). A long poll (ReceiveMessage with WaitTimeSeconds
above 0) waits inside moto for what sends bring, so it runs outside the lock; the local
runtime's pollers never long-poll.

The locks can go when moto's server keeps a request atomic itself. getmoto/moto#7166
documented that it does not; no issue asks for it yet. The one to file: "server mode:
UpdateItem, conditional writes and TransactWriteItems are not atomic across the server's
threads, nor is SQS DeleteMessage (it can bring back or lose a message)".
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

WsgiApp = Callable[..., Iterable[bytes]]
# A request's (access key, service, operation): mailpipe.local.metering.identify_request.
Identify = Callable[[dict[str, Any]], tuple[str, str, str]]
_READS = {"GET", "HEAD", "OPTIONS"}


def atomic_requests(app: WsgiApp, identify: Identify) -> WsgiApp:
    """`app` (moto's) with DynamoDB's requests, and SQS's with S3's writes, one at a time."""
    tables, queues = threading.Lock(), threading.Lock()

    def one_at_a_time(environ: dict[str, Any], start_response: Callable[..., Any]
                      ) -> Iterable[bytes]:
        lock = _lock_for(environ, identify, tables, queues)
        if lock is None:
            return app(environ, start_response)
        with lock:
            # The answer is made whole under the lock: moto may build it lazily.
            response = app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()

    return one_at_a_time


def _lock_for(environ: dict[str, Any], identify: Identify, tables: threading.Lock,
              queues: threading.Lock) -> threading.Lock | None:
    _, service, operation = identify(environ)
    if service == "dynamodb":
        return tables
    if service == "sqs":
        return None if operation == "ReceiveMessage" and _long_poll(environ) else queues
    if service == "s3" and environ.get("REQUEST_METHOD") not in _READS:
        return queues  # a write may send S3's event notification to a queue
    return None


def _long_poll(environ: dict[str, Any]) -> bool:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        request = json.loads(body)  # SQS's JSON protocol
    except ValueError:  # its query protocol, in the body or the URL
        request = {name: values[0] for name, values in parse_qs(
            body.decode(errors="replace") + "&" + environ.get("QUERY_STRING", "")).items()}
    wait = request.get("WaitTimeSeconds") if isinstance(request, dict) else None
    try:
        return int(wait or 0) > 0
    except (TypeError, ValueError):
        return False
