"""IMAP on a large folder, beside Dovecot on the same machine and in the same run.

    python bench/imap_folder.py [--messages 10000] [--headers 100] [--appends 1000]

mailpipe: the IMAP server on its DynamoDB and S3 adapters, against the template's table
and bucket in moto's server (its own process, as under `mailpipe up`), the folder filed
message by message through the mailbox port (each message its own S3 object, UID and
change-log entry, as filing makes them). Dovecot: a private dovecot-imapd (Maildir)
with the same messages APPENDed. Both over implicit TLS on 127.0.0.1, driven by
imaplib, one client at a time:

- SELECT INBOX plus `UID FETCH 1:* (FLAGS)`, on a new connection each time: the first
  run and the median of the next ones; for mailpipe the DynamoDB requests and items read
  (what is billed, and what carries over to AWS) and the time spent waiting on moto
  (which walks the whole table for a query on a secondary index, so its latency grows
  with the table where DynamoDB's does not);
- `UID FETCH 1:<n> (BODY.PEEK[HEADER])` (a client's message list), with the S3 reads;
- APPEND of `--appends` messages to a new folder, one after another.
"""

from __future__ import annotations

import argparse
import imaplib
import logging
import multiprocessing
import os
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from direct_filing import file_directly  # noqa: E402  (bench/ is on the path above)
from mailbox_scale import ReadCounter  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "bench@example.test"
REPEATS = 5


def _message(number: int) -> bytes:
    return (f"From: Sender {number % 97} <sender{number % 97}@crepes.fr>\r\n"
            f"To: {ACCOUNT}\r\nSubject: message {number}\r\n"
            f"Date: Fri, 27 Nov 2026 10:{number // 60 % 60:02d}:{number % 60:02d} +0000\r\n"
            f"Message-ID: <{number}@crepes.fr>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
            + f"line {number} of a message body of about two kilobytes\r\n" * 40).encode()


class Requests(ReadCounter):
    """DynamoDB requests and items read (mailbox_scale's counter), S3 requests, and the
    wall time spent waiting on them (on moto here), from botocore's call events."""

    def __init__(self) -> None:
        super().__init__()
        self.s3 = 0
        self.waited = 0.0

    @property
    def dynamodb(self) -> int:
        return self.calls

    def started(self, context: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.perf_counter()

    def dynamodb_call(self, parsed: dict[str, Any], model: Any, context: dict[str, Any],
                      **_: Any) -> None:
        self(parsed, model)
        self._waited(context)

    def s3_call(self, context: dict[str, Any], **_: Any) -> None:
        self.s3 += 1
        self._waited(context)

    def _waited(self, context: dict[str, Any]) -> None:
        if "bench_started" in context:
            self.waited += time.perf_counter() - context.pop("bench_started")

    def reset(self) -> None:
        self.calls = self.items = self.s3 = 0
        self.waited = 0.0

    def register(self, dynamodb: Any, s3: Any) -> None:
        for client, name, handler in ((dynamodb, "dynamodb", self.dynamodb_call),
                                      (s3, "s3", self.s3_call)):
            client.meta.events.register(f"before-call.{name}", self.started)
            client.meta.events.register(f"after-call.{name}", handler)


class Server:
    def __init__(self, name: str, port: int, context: ssl.SSLContext, user: str,
                 password: str, requests: Requests | None) -> None:
        self.name, self.port, self.context = name, port, context
        self.user, self.password, self.requests = user, password, requests

    def client(self) -> imaplib.IMAP4_SSL:
        client = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=self.context,
                                   timeout=600)
        client.login(self.user, self.password)
        return client


def _timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _select_and_list(server: Server, expected: int) -> None:
    client = server.client()
    status, data = client.select("INBOX")
    assert status == "OK" and int(data[0] or 0) == expected, (status, data)
    status, listed = client.uid("FETCH", "1:*", "(FLAGS)")
    assert status == "OK" and len(listed) == expected, (status, len(listed))
    client.logout()


def _headers(server: Server, count: int) -> float:
    """The FETCH alone (the SELECT before it is measured above)."""
    client = server.client()
    client.select("INBOX", readonly=True)
    if server.requests:
        server.requests.reset()
    started = time.perf_counter()
    status, fetched = client.uid("FETCH", f"1:{count}", "(BODY.PEEK[HEADER])")
    elapsed = time.perf_counter() - started
    assert status == "OK" and sum(isinstance(part, tuple) for part in fetched) == count
    client.logout()
    return elapsed


def _appends(server: Server, count: int) -> None:
    client = server.client()
    assert client.create("Appended")[0] == "OK"
    for number in range(count):
        status, _ = client.append("Appended", None, None, _message(number))
        assert status == "OK", status
    client.logout()


def measure(server: Server, messages: int, headers: int, appends: int) -> dict[str, Any]:
    """Seconds, and for mailpipe (requests, items read, seconds waiting on moto)."""
    counted = server.requests

    def counts() -> tuple[int, int, int, float]:
        assert counted is not None
        return counted.dynamodb, counted.s3, counted.items, counted.waited

    results: dict[str, Any] = {}
    if counted:
        counted.reset()
    results["select_first_s"] = _timed(lambda: _select_and_list(server, messages))
    if counted:
        results["select_counts"] = counts()
    results["select_median_s"] = statistics.median(
        _timed(lambda: _select_and_list(server, messages)) for _ in range(REPEATS))
    results["headers_s"] = _headers(server, headers)
    if counted:
        results["headers_counts"] = counts()
        counted.reset()
    results["append_s"] = _timed(lambda: _appends(server, appends))
    if counted:
        results["append_counts"] = counts()
    return results


def _moto(port: int, ready: Any) -> None:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    ready.set()
    threading.Event().wait()


@contextmanager
def mailpipe_server(messages: int, certificate: Path) -> Iterator[Server]:
    from mailpipe.local.launcher import free_port
    from mailpipe.local.stack import aws_environment

    port = free_port()
    ready = multiprocessing.Event()
    moto = multiprocessing.Process(target=_moto, args=(port, ready), daemon=True)
    moto.start()
    ready.wait(timeout=60)
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(aws_environment(endpoint))
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    try:
        with _mailpipe_on(endpoint, messages, certificate) as server:
            yield server
    finally:
        moto.kill()


@contextmanager
def _mailpipe_on(endpoint: str, messages: int, certificate: Path) -> Iterator[Server]:
    from edge.imap.config import ImapLimits
    from mailcore.adapters.aws.clients import dynamodb_client, s3_client
    from mailcore.adapters.memory.directory import InMemoryAccountDirectory
    from mailcore.wiring import aws_adapters
    from mailpipe.local.provision import provision

    provisioned = provision(ROOT, "bench", {"HostedDomains": "example.test"},
                            boto3.session.Session(region_name=REGION), endpoint, REGION)
    # The edge's containers (SMTP, IMAP) name the same table and bucket.
    for spec in provisioned.containers.values():
        if "MAILPIPE_TABLE" in spec.environment:
            os.environ.update({name: value for name, value in spec.environment.items()
                               if name.startswith("MAILPIPE_")})
    adapters = aws_adapters()
    filing = time.perf_counter()
    file_directly(adapters, ACCOUNT, messages, _message)
    print(f"mailpipe: {messages:,} messages filed into moto in "
          f"{time.perf_counter() - filing:.0f} s", flush=True)
    requests = Requests()
    requests.register(dynamodb_client(), s3_client())
    from tests.imap_support import running_imap

    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views, store=adapters.store,
                      references=adapters.references,
                      directory=InMemoryAccountDirectory({ACCOUNT: "password"}),
                      limits=ImapLimits(per_client=1000)) as imap:
        certificate.write_text(imap.cert_file.read_text())
        yield Server("mailpipe", imap.imaps_port, imap.client_tls(), ACCOUNT, "password",
                     requests)


@contextmanager
def dovecot_server(messages: int, folder: Path) -> Iterator[Server]:
    from edge.tls import ensure_self_signed
    from tests.dovecot_support import PASSWORD, private_dovecot

    cert_file, key_file = ensure_self_signed(folder, "localhost")
    context = ssl.create_default_context(cafile=str(cert_file))
    context.check_hostname = False
    with private_dovecot((cert_file, key_file)) as dovecot:
        server = Server("Dovecot", dovecot.imaps_port, context, ACCOUNT, PASSWORD, None)
        filing = time.perf_counter()
        client = server.client()
        for number in range(messages):
            assert client.append("INBOX", None, None, _message(number))[0] == "OK"
        client.logout()
        print(f"Dovecot: {messages:,} messages APPENDed in "
              f"{time.perf_counter() - filing:.0f} s", flush=True)
        yield server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--headers", type=int, default=100)
    parser.add_argument("--appends", type=int, default=1000)
    arguments = parser.parse_args()
    n, h, a = arguments.messages, arguments.headers, arguments.appends
    with tempfile.TemporaryDirectory() as folder:
        with dovecot_server(n, Path(folder)) as dovecot:
            reference = measure(dovecot, n, h, a)
        with mailpipe_server(n, Path(folder) / "mailpipe.pem") as mailpipe:
            ours = measure(mailpipe, n, h, a)
    print(f"\n{n:,}-message Inbox, over TLS on 127.0.0.1, one client; Dovecot is the "
          f"baseline, measured in the same run. mailpipe's time includes its waits on moto "
          f"(one Python process standing in for DynamoDB and S3), given apart: the requests "
          f"and items read are what carries over to AWS.")
    print("| | Dovecot | mailpipe | of which waiting on moto | mailpipe requests |")
    print("|---|---:|---:|---:|---|")
    rows = [("SELECT + UID FETCH 1:* (FLAGS), first", "select_first_s", "select_counts", 1),
            (f"SELECT + UID FETCH 1:* (FLAGS), median of {REPEATS}", "select_median_s",
             None, 1),
            (f"UID FETCH 1:{h} (BODY.PEEK[HEADER])", "headers_s", "headers_counts", 1),
            (f"APPEND x {a:,} (per APPEND)", "append_s", "append_counts", a)]
    for name, seconds, counted, per in rows:
        waited, requests = "", "as above"
        if counted:
            dynamodb, s3, items, moto = ours[counted]
            waited = f"{moto / per:.3f} s"
            requests = (f"{dynamodb / per:g} DynamoDB ({items / per:,.0f} items read), "
                        f"{s3 / per:g} S3")
        print(f"| {name} | {reference[seconds] / per:.3f} s | {ours[seconds] / per:.3f} s "
              f"| {waited} | {requests} |")

if __name__ == "__main__":
    main()
