"""A mail client opening a folder, beside Dovecot on the same machine and in the same run.

    python bench/imap_open_folder.py [--messages 200,10000] [--views filed|lazy] [--fast-seed]
        [--quick]

For each folder size, an Inbox of ordinary messages of about 27 KB (bench/direct_filing.py),
one client over implicit TLS on 127.0.0.1 (imaplib), a new connection per request, each
request run `--repeats` times (the first run and the best are shown):
  (a) SELECT INBOX + FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)
  (b) SELECT INBOX + Thunderbird's UID FETCH 1:* (UID RFC822.SIZE FLAGS
      BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date ...)])
  (c) SELECT INBOX + UID FETCH 1:* (FLAGS)
  (d) SEARCH FROM <one sender of 97> (the folder selected before)

mailpipe: the IMAP server in a process of its own, on its DynamoDB and S3 adapters, against
the template's table and bucket in moto's server (a third process, served as by
`mailpipe up`),
the folder filed through the mailbox port with each message's IMAP view as filing keeps it
(`--views lazy`: without views, as for mail filed before them: the first FETCH makes them).
For mailpipe, beside the wall time: its own CPU (the server process's CPU time: IMAP,
parsing, botocore), the time its storage calls spent waiting on moto (summed over calls),
and its storage requests by kind (DynamoDB by operation, S3 GetObject of messages, S3
reads of view objects apart). Dovecot: a private dovecot-imapd (Maildir), the same
messages APPENDed.

Targets (issue 27), printed beside: below 10,000 messages each request at most 25x
Dovecot's wall time; at 10,000, mailpipe's CPU at most 25x Dovecot's time (and SELECT +
UID FETCH (FLAGS) at most 0.5 s of CPU); for (a) and (b), at most N/100 + 3 storage
requests for the FETCH and no S3 GetObject of a message.
"""

from __future__ import annotations

import argparse
import imaplib
import logging
import multiprocessing
import os
import re
import ssl
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from direct_filing import file_directly, ordinary_message  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "bench@example.test"
PASSWORD = "password"
THUNDERBIRD = ("(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date "
               "Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type "
               "Reply-To)])")
SEARCHED = "sender7@"  # one sender of the 97


def _message(number: int) -> bytes:
    return ordinary_message(number, ACCOUNT)


@dataclass(frozen=True)
class Request:
    label: str
    name: str
    command: str  # "FETCH", "UID FETCH" or "SEARCH"
    arguments: tuple[str, ...]
    structure: bool  # held to N/100 + 3 requests and no message read


REQUESTS = [
    Request("a", "SELECT + FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)", "FETCH",
            ("1:*", "(FLAGS ENVELOPE BODYSTRUCTURE)"), True),
    Request("b", "SELECT + UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS "
            "(14 fields)]) (Thunderbird)", "UID FETCH", ("1:*", THUNDERBIRD), True),
    Request("c", "SELECT + UID FETCH 1:* (FLAGS)", "UID FETCH", ("1:*", "(FLAGS)"), False),
    Request("d", f"SEARCH FROM {SEARCHED} (selected before)", "SEARCH",
            ("FROM", SEARCHED), False),
]


# --- The mailpipe server's process -------------------------------------------------------

class StorageCounter:
    """Storage requests by kind, and the wall time spent in them, from botocore's call
    events (called from the IMAP server's storage threads at once, hence the lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.kinds: Counter[str] = Counter()
        self.waited = 0.0

    def register(self, dynamodb: Any, s3: Any) -> None:
        for client, service in ((dynamodb, "dynamodb"), (s3, "s3")):
            client.meta.events.register(f"before-call.{service}", self._started)
            client.meta.events.register(f"after-call.{service}", self._ended)

    def _started(self, model: Any, params: dict[str, Any], context: dict[str, Any],
                 **_: Any) -> None:
        from mailcore.s3_keys import IMAP_VIEW_SUFFIX

        kind = model.name
        if model.service_model.service_name == "s3":
            view = model.name == "GetObject" and str(params.get("url_path", "")).endswith(
                IMAP_VIEW_SUFFIX)
            kind = "S3 GetObject (view)" if view else f"S3 {model.name}"
        context["bench_kind"] = kind
        context["bench_started"] = time.perf_counter()

    def _ended(self, context: dict[str, Any], **_: Any) -> None:
        if "bench_started" not in context:
            return
        elapsed = time.perf_counter() - context.pop("bench_started")
        with self._lock:
            self.kinds[context.pop("bench_kind")] += 1
            self.waited += elapsed

    def taken(self) -> tuple[dict[str, int], float]:
        """The counts and waits since the last call, which starts them again."""
        with self._lock:
            kinds, waited = dict(self.kinds), self.waited
            self.kinds.clear()
            self.waited = 0.0
        return kinds, waited


def _serve(messages: int, views: str, pipe: Connection) -> None:
    """The IMAP server on the AWS adapters, answering the bench's questions on `pipe`:
    "take" -> (CPU seconds of this process, requests by kind, seconds waiting on moto)."""
    logging.getLogger("botocore").setLevel(logging.ERROR)
    from edge.imap.config import ImapLimits
    from mailcore.adapters.aws.clients import dynamodb_client, s3_client
    from mailcore.adapters.memory.directory import InMemoryAccountDirectory
    from mailcore.wiring import aws_adapters
    from tests.imap_support import running_imap

    adapters = aws_adapters()
    started = time.perf_counter()
    file_directly(adapters, ACCOUNT, messages, _message,
                  views=adapters.imap_views if views == "filed" else None)
    filing = time.perf_counter() - started
    counter = StorageCounter()
    counter.register(dynamodb_client(), s3_client())
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views,
                      store=adapters.store, references=adapters.references,
                      directory=InMemoryAccountDirectory({ACCOUNT: PASSWORD}),
                      limits=ImapLimits(per_client=1000)) as imap:
        pipe.send((imap.imaps_port, imap.cert_file.read_text(), filing))
        while pipe.recv() == "take":
            kinds, waited = counter.taken()
            pipe.send((time.process_time(), kinds, waited))


def _moto(port: int, ready: Any, seeded: Any, fast_seed: bool) -> None:
    # moto's server as `mailpipe up` serves it: one DynamoDB request at a time, as atomic as
    # AWS's (moto's own server let two transactions copy and change a table at once).
    from mailpipe.local.metering import Meter, MeteredMotoServer

    if fast_seed:
        _copy_no_table_while_seeding(seeded)
    server = MeteredMotoServer(Meter(), "127.0.0.1", port)
    server.start()
    ready.set()
    threading.Event().wait()


def _copy_no_table_while_seeding(seeded: Any) -> None:
    """moto's TransactWriteItems copies the whole table once per item of the transaction,
    to restore it if the transaction fails: filing through the mailbox port is quadratic in
    the folder's size (in one process, 100 messages took 3 s into an empty table and 27 s
    with 500 there; 10,000 would take hours). Seeding only (one writer, new messages: no
    transaction fails), moto copies nothing; its own copy is back before any measurement."""
    import copy
    import types

    import moto.dynamodb.models as models

    models.copy = types.SimpleNamespace(  # type: ignore[assignment]
        deepcopy=lambda value, memo=None: value, copy=copy.copy)

    def restore() -> None:
        seeded.wait()
        models.copy = copy  # type: ignore[assignment]

    threading.Thread(target=restore, daemon=True).start()


# --- The client's side -------------------------------------------------------------------

@dataclass
class Sample:
    """One run of one request: wall seconds; for mailpipe, CPU seconds, seconds waiting on
    moto, and the requests of the SELECT and of the command apart."""

    wall: float
    select_wall: float = 0.0
    cpu: float = 0.0
    waited: float = 0.0
    select_requests: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)


class Server:
    def __init__(self, name: str, port: int, context: ssl.SSLContext, user: str,
                 password: str, pipe: Connection | None = None) -> None:
        self.name, self.port, self.context = name, port, context
        self.user, self.password, self.pipe = user, password, pipe

    def client(self) -> imaplib.IMAP4_SSL:
        client = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=self.context,
                                   timeout=900)
        client.login(self.user, self.password)
        return client

    def take(self) -> tuple[float, dict[str, int], float]:
        if self.pipe is None:
            return 0.0, {}, 0.0
        self.pipe.send("take")
        cpu, kinds, waited = self.pipe.recv()
        return cpu, kinds, waited


def _answered(fetched: list[Any]) -> int:
    """How many messages a FETCH answered: imaplib gives a line, or a (line, literal) pair
    then the line's rest, per message."""
    return sum(re.match(rb"\d+ \(", part[0] if isinstance(part, tuple) else part) is not None
               for part in fetched)


def run_once(server: Server, request: Request, messages: int) -> tuple[Sample, Any]:
    """One run on a new connection; the sample and the answer's gist (what was found)."""
    client = server.client()
    try:
        if request.command == "SEARCH":
            assert client.select("INBOX", readonly=True)[0] == "OK"
        cpu, _, _ = server.take()
        began = time.perf_counter()
        select_wall = 0.0
        select_requests: dict[str, int] = {}
        select_waited = 0.0
        if request.command != "SEARCH":
            status, data = client.select("INBOX", readonly=True)
            select_wall = time.perf_counter() - began
            assert status == "OK" and int(data[0] or 0) == messages, (status, data)
            _, select_requests, select_waited = server.take()
        began = time.perf_counter()
        if request.command == "UID FETCH":
            status, answer = client.uid("FETCH", *request.arguments)
        else:
            status, answer = getattr(client, request.command.lower())(
                None if request.command == "SEARCH" else request.arguments[0],
                *request.arguments[(0 if request.command == "SEARCH" else 1):])
        wall = select_wall + time.perf_counter() - began
        after, requests, waited = server.take()
        assert status == "OK", (status, answer)
        gist: Any
        if request.command == "SEARCH":
            gist = len(answer[0].split())
        else:
            gist = _answered(answer)
            assert gist == messages, (request.label, gist, messages)
    finally:
        client.logout()
    return (Sample(wall, select_wall, after - cpu, select_waited + waited, select_requests,
                   requests), gist)


def measure(server: Server, messages: int, repeats: int
            ) -> dict[str, tuple[Sample, Sample, Any]]:
    """Per request: the first run, the best run (least wall time), the answer's gist."""
    results = {}
    for request in REQUESTS:
        runs = [run_once(server, request, messages) for _ in range(repeats)]
        gists = {gist for _, gist in runs}
        assert len(gists) == 1, (request.label, gists)
        best = min((sample for sample, _ in runs), key=lambda sample: sample.wall)
        results[request.label] = (runs[0][0], best, gists.pop())
    return results


@contextmanager
def mailpipe_server(messages: int, views: str, fast_seed: bool) -> Iterator[Server]:
    import boto3

    from mailpipe.local.launcher import free_port
    from mailpipe.local.provision import provision
    from mailpipe.local.stack import aws_environment

    spawn = multiprocessing.get_context("spawn")
    port = free_port()
    ready, seeded = spawn.Event(), spawn.Event()
    moto = spawn.Process(target=_moto, args=(port, ready, seeded, fast_seed), daemon=True)
    moto.start()
    server_process = None
    try:
        ready.wait(timeout=60)
        endpoint = f"http://127.0.0.1:{port}"
        os.environ.update(aws_environment(endpoint))
        os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
        provisioned = provision(ROOT, "bench", {"HostedDomains": "example.test"},
                                boto3.session.Session(region_name=REGION), endpoint, REGION)
        # The edge's containers (SMTP, IMAP) name the same table and bucket.
        for spec in provisioned.containers.values():
            if "MAILPIPE_TABLE" in spec.environment:
                os.environ.update({name: value for name, value in spec.environment.items()
                                   if name.startswith("MAILPIPE_")})
        ours, theirs = spawn.Pipe()
        server_process = spawn.Process(target=_serve, args=(messages, views, theirs),
                                       daemon=True)
        server_process.start()
        while not ours.poll(timeout=1):  # filing 10,000 messages into moto takes a while
            if not server_process.is_alive():
                raise RuntimeError("the mailpipe server did not start")
        imaps_port, certificate, filing = ours.recv()
        seeded.set()
        print(f"mailpipe: {messages:,} messages filed into moto ({views} views) in "
              f"{filing:.0f} s{' (no table copies while seeding)' if fast_seed else ''}",
              flush=True)
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as cert_file:
            cert_file.write(certificate)
            cert_file.flush()
            context = ssl.create_default_context(cafile=cert_file.name)
        context.check_hostname = False
        yield Server("mailpipe", imaps_port, context, ACCOUNT, PASSWORD, ours)
        ours.send("stop")
    finally:
        if server_process is not None:
            server_process.join(timeout=30)
            if server_process.is_alive():
                server_process.kill()
        moto.kill()


@contextmanager
def dovecot_server(messages: int, folder: Path) -> Iterator[Server]:
    from edge.tls import ensure_self_signed
    from tests.dovecot_support import PASSWORD as DOVECOT_PASSWORD
    from tests.dovecot_support import private_dovecot

    cert_file, key_file = ensure_self_signed(folder, "localhost")
    context = ssl.create_default_context(cafile=str(cert_file))
    context.check_hostname = False
    with private_dovecot((cert_file, key_file)) as dovecot:
        server = Server("Dovecot", dovecot.imaps_port, context, ACCOUNT, DOVECOT_PASSWORD)
        filing = time.perf_counter()
        client = server.client()
        for number in range(messages):
            assert client.append("INBOX", None, None, _message(number))[0] == "OK"
        client.logout()
        print(f"Dovecot: {messages:,} messages APPENDed in "
              f"{time.perf_counter() - filing:.0f} s", flush=True)
        yield server


# --- The report --------------------------------------------------------------------------

def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.0095 else f"{seconds * 1000:.1f} ms"


def _kinds(requests: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count:,}" for kind, count in sorted(requests.items())) or "none"


def _targets(request: Request, messages: int, dovecot: float, best: Sample) -> str:
    verdicts: list[tuple[str, bool]] = []
    if messages < 10_000:
        verdicts.append(("wall <= 25x", best.wall <= 25 * dovecot))
    else:
        verdicts.append(("CPU <= 25x Dovecot", best.cpu <= 25 * dovecot))
        if request.label == "c":
            verdicts.append(("CPU <= 0.5 s", best.cpu <= 0.5))
    if request.structure:
        allowed = messages // 100 + 3
        fetched = sum(best.requests.values())
        messages_read = best.requests.get("S3 GetObject", 0)
        verdicts.append((f"FETCH requests <= {allowed}", fetched <= allowed))
        verdicts.append(("no message GET", messages_read == 0))
    return "; ".join(f"{name} {'met' if met else 'MISSED'}" for name, met in verdicts)


def report(messages: int, views: str, repeats: int,
           reference: dict[str, tuple[Sample, Sample, Any]],
           ours: dict[str, tuple[Sample, Sample, Any]]) -> None:
    print(f"\n{messages:,}-message Inbox of 27 KB messages ({views} views), one client over "
          f"TLS on 127.0.0.1, best of {repeats} (first run beside it); Dovecot measured in the "
          "same run. mailpipe's CPU is its server process's; its wall time includes its "
          "waits on moto (another process), summed over calls.")
    print("| request | Dovecot | mailpipe first | mailpipe best (SELECT) | ratio | mailpipe CPU "
          "| CPU ratio | waiting on moto | requests: SELECT; command | targets |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for request in REQUESTS:
        _, dovecot_best, dovecot_gist = reference[request.label]
        first, best, gist = ours[request.label]
        assert gist == dovecot_gist, (request.label, gist, dovecot_gist)
        searching = request.command == "SEARCH"
        select = "-" if searching else _kinds(best.select_requests)
        select_wall = "" if searching else f" ({_ms(best.select_wall)})"
        print(f"| ({request.label}) {request.name} | {_ms(dovecot_best.wall)} "
              f"| {_ms(first.wall)} | {_ms(best.wall)}{select_wall} "
              f"| {best.wall / dovecot_best.wall:,.0f}x | {_ms(best.cpu)} "
              f"| {best.cpu / dovecot_best.wall:,.1f}x | {_ms(best.waited)} "
              f"| {select}; {_kinds(best.requests)} "
              f"| {_targets(request, messages, dovecot_best.wall, best)} |")
    lazy_first = ours["a"][0]
    if views == "lazy":
        print(f"Lazy path: the first (a), which finds no views (and makes them, where FETCH "
              f"makes them): {_kinds(lazy_first.requests)} ({_ms(lazy_first.wall)}, CPU "
              f"{_ms(lazy_first.cpu)}).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", default="200,10000",
                        help="folder sizes, comma-separated")
    parser.add_argument("--views", choices=("filed", "lazy"), default="filed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fast-seed", action="store_true",
                        help="while filing the folder, moto's transactions copy no table "
                             "(for 10,000 messages; restored before measuring)")
    parser.add_argument("--quick", action="store_true",
                        help="200 messages, two runs of each request")
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.messages.split(",")]
    repeats = arguments.repeats
    if arguments.quick:
        sizes, repeats = [200], 2
    measured: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            with dovecot_server(size, Path(folder)) as dovecot:
                reference = measure(dovecot, size, repeats)
            with mailpipe_server(size, arguments.views, arguments.fast_seed) as mailpipe:
                ours = measure(mailpipe, size, repeats)
        measured.append((size, reference, ours))
    for size, reference, ours in measured:
        report(size, arguments.views, repeats, reference, ours)
    # Wall times on a shared machine include waits for a core: the load says how many.
    print("Load average at the end (1, 5, 15 min): "
          + ", ".join(f"{load:.1f}" for load in os.getloadavg())
          + f" on {os.cpu_count()} cores.")


if __name__ == "__main__":
    main()
