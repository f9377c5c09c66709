"""Filing with the junk filter on against off (issue 29): the filing process's own cost.

moto runs as a server in its own process (mailpipe up's MeteredMotoServer), with the template's
table and bucket; this process is the filing function. One account's filter learned
10,000 messages (half junk-like, half ham-like, from two vocabularies of made-up words in
Zipf-like frequencies, so that the model reaches its token cap), committed through the
store as the learner commits it. Then batches of 10 messages (Lambda's batch of
notifications) are filed for that account through file_inbound_together as
functions/file_message files them, the settings taking turns batch by batch: the filter
off (`junk=None`), off with the junk-like half quarantined by DMARC ("off, split": the
same two folders per batch as with the filter on, so that the Junk folder's read and
transaction show apart from the filter's own work) and on (`junk=AwsAdapters.junk_filing`),
after one warm-up batch each (a warm process: the model read once and held).
Each message is about 10 KiB, text and HTML alternatives, half junk-like.

What carries over to AWS, measured per message: this process's CPU (time.process_time
around each batch: what Lambda bills and scales on; moto's CPU is in its own process),
the requests sent to DynamoDB and S3 by operation (botocore's call events), the peak of
Python allocations while filing a batch (tracemalloc, one batch per setting after the
timed ones) and the model's size. Throughput that carries over: messages per CPU-second
of this process. The wall rate is printed too, labelled as moto's: it is bound by moto's
server (its TransactWriteItems copies the tables it touches), not by the filing.

    python bench/junk_filing.py [--messages 150] [--trained 10000] [--keep-model FILE]
        [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import multiprocessing
import os
import pstats
import random
import sys
import threading
import time
import tracemalloc
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REGION = "us-east-1"
ACCOUNT = "bob@example.test"
BATCH = 10
VOCABULARY = 20_000  # made-up words per kind, and as many shared
SETTINGS = ("off", "off, split", "on")


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("bcdfghjklmnprstvz") + rng.choice("aeiou")
                   for _ in range(rng.randint(2, 4)))


def _vocabularies() -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(29)
    words: dict[str, None] = {}
    while len(words) < 3 * VOCABULARY:
        words[_word(rng)] = None
    listed = list(words)
    return (listed[:VOCABULARY], listed[VOCABULARY:2 * VOCABULARY],
            listed[2 * VOCABULARY:])


JUNK, HAM, SHARED = _vocabularies()
# Zipf-like: the n-th word of a vocabulary is drawn with weight 1/n.
_CUMULATIVE = list(accumulate(1 / (rank + 1) for rank in range(VOCABULARY)))


def message(seed: int, junk: bool) -> bytes:
    """About 10 KiB: a subject, a text part and its HTML alternative."""
    rng = random.Random(seed * 2 + junk)
    own = JUNK if junk else HAM
    owned = iter(rng.choices(own, cum_weights=_CUMULATIVE, k=700))
    shared = iter(rng.choices(SHARED, cum_weights=_CUMULATIVE, k=700))
    words = [next(owned) if rng.random() < 0.4 else next(shared) for _ in range(700)]
    text = "\r\n".join(" ".join(words[start:start + 12]) for start in range(0, 700, 12))
    html = "<p>" + "</p>\r\n<p>".join(" ".join(words[start:start + 12])
                                      for start in range(0, 350, 12)) + "</p>"
    return (f"From: <sender{seed % 97}@crepes.fr>\r\nTo: <{ACCOUNT}>\r\n"
            f"Subject: {' '.join(words[:6])}\r\nMessage-ID: <{seed}.{int(junk)}@crepes.fr>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n"
            "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text
            + "\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html
            + "\r\n--alt--\r\n").encode()


def train(adapters: Any, trained: int, kept: Path | None) -> tuple[int, int, float]:
    """The account's filter taught `trained` messages: (model bytes, tokens, seconds).
    With `kept`, a model trained so by an earlier run is read from there (else written)."""
    from mailcore.domain.junk import Lesson
    from mailcore.junk.model import JunkModel
    from mailcore.junk.tokens import message_tokens

    started = time.perf_counter()
    if kept is not None and kept.exists():
        model = JunkModel.from_bytes(kept.read_bytes())
        assert model.trained_junk + model.trained_not_junk == trained, "another training"
    else:
        model = JunkModel.empty()
        for seed in range(trained):
            junk = seed % 2 == 0
            model.learn(message_tokens(message(1_000_000 + seed, junk)),
                        Lesson.JUNK if junk else Lesson.NOT_JUNK)
        if kept is not None:
            kept.write_bytes(model.to_bytes())
    adapters.junk_filters.commit(ACCOUNT, 0, model, {}, {})
    return len(model.to_bytes()), model.token_count, time.perf_counter() - started


class Requests:
    """Requests sent, by service and operation, from botocore's before-call events."""

    def __init__(self, *clients: Any) -> None:
        self.counts: Counter[str] = Counter()
        for client in clients:
            client.meta.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.counts[f"{model.service_model.service_name} {model.name}"] += 1


def _stored(adapters: Any, count: int, first_seed: int, quarantine: bool = False) -> list[str]:
    """`count` messages, every other one junk-like; with `quarantine`, those carry a DMARC
    quarantine verdict, so that filing without the filter puts them in Junk too."""
    from mailcore.domain.envelope import Envelope
    from mailcore.domain.ids import new_message_id
    from mailcore.domain.verdict import (
        Disposition,
        DmarcVerdict,
        Result,
        SpfVerdict,
        Verdict,
    )

    envelope = Envelope(mail_from="sender@crepes.fr", rcpt_tos=(ACCOUNT,), peer="192.0.2.1",
                        helo="crepes.fr", tls=True, received_at=datetime.now(UTC))
    quarantined = replace(envelope, verdict=Verdict(
        spf=SpfVerdict(Result.FAIL, "crepes.fr"), dmarc=DmarcVerdict(
            Result.FAIL, "crepes.fr", "quarantine", Disposition.QUARANTINE)))
    return [adapters.store.put(new_message_id(), message(first_seed + n, n % 2 == 0),
                               quarantined if quarantine and n % 2 == 0 else envelope)
            for n in range(count)]


def _file(adapters: Any, keys: list[str], junk: Any) -> list[Any]:
    from mailcore.services.filing import file_inbound_together

    outcomes = file_inbound_together(keys, adapters.store, adapters.mailboxes,
                                     adapters.domains, adapters.outgoing,
                                     references=adapters.references,
                                     views=adapters.imap_views, junk=junk)
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
    return outcomes


def _moto(port: int, ready: Any) -> None:
    # The local runtime's server: moto's ThreadedMotoServer runs requests from filing's
    # threads at once, and its backends are not safe so (a query met "dictionary changed
    # size during iteration"; mailpipe/local/atomic_requests.py).
    from mailpipe.local.metering import Meter, MeteredMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
    server = MeteredMotoServer(Meter(), "127.0.0.1", port)
    server.start()
    ready.set()
    threading.Event().wait()


def _default_model_file(trained: int) -> Path:
    from mailcore.junk.tokens import TOKENIZER_VERSION

    return ROOT / ".mailpipe" / "bench" / f"junk_model_{trained}_t{TOKENIZER_VERSION}.bin"


def _setting(adapters: Any, name: str) -> Any:
    return adapters.junk_filing if name == "on" else None


def _peak_kib(adapters: Any, name: str, first_seed: int) -> float:
    """The peak of Python allocations while filing one batch with this setting."""
    keys = _stored(adapters, BATCH, first_seed, name == "off, split")
    tracemalloc.start()
    try:
        _file(adapters, keys, _setting(adapters, name))
        return tracemalloc.get_traced_memory()[1] / 1024
    finally:
        tracemalloc.stop()


def _model_in_memory_kib(data: bytes) -> float:
    """What the decoded model holds in a process (tracemalloc around its decoding; the
    filing process holds one per account whose mail it judged by content, within
    dynamodb_junk's MODEL_CACHE_BYTES)."""
    from mailcore.junk.model import JunkModel

    tracemalloc.start()
    try:
        model = JunkModel.from_bytes(data)
        held = tracemalloc.get_traced_memory()[0] / 1024
        assert model.token_count > 0
        return held
    finally:
        tracemalloc.stop()


def _rss_peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=150, help="filed with each setting")
    parser.add_argument("--trained", type=int, default=10_000)
    parser.add_argument("--keep-model", type=Path, default=None,
                        help="a file to keep the trained model in between runs (default: "
                             ".mailpipe/bench/junk_model_<trained>_t<tokenizer version>.bin)")
    parser.add_argument("--profile", action="store_true",
                        help="also print cProfile's top functions of the filter-on batches")
    arguments = parser.parse_args()
    print(__doc__.split("\n\n")[0])
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
        _run(arguments, endpoint)
    finally:
        moto.kill()


def _run(arguments: argparse.Namespace, endpoint: str) -> None:
    from mailcore.adapters.aws.clients import dynamodb_client, s3_client
    from mailcore.domain.mailbox import INBOX
    from mailcore.domain.mailbox import JUNK as JUNK_FOLDER
    from mailcore.s3_keys import message_id_of_key
    from mailcore.wiring import aws_adapters
    from mailpipe.local.provision import provision

    provisioned = provision(ROOT, "bench", {"HostedDomains": "example.test"},
                            boto3.session.Session(region_name=REGION), endpoint, REGION)
    for name, value in provisioned.functions["FileMessageFunction"].environment.items():
        if name.startswith("MAILPIPE_"):
            os.environ[name] = value
    adapters = aws_adapters()
    kept = arguments.keep_model or _default_model_file(arguments.trained)
    kept.parent.mkdir(parents=True, exist_ok=True)
    size, tokens, seconds = train(adapters, arguments.trained, kept)
    print(f"model after {arguments.trained:,} messages: {size:,} bytes, {tokens:,} tokens"
          f" (trained or read from {kept.relative_to(ROOT) if kept.is_relative_to(ROOT) else kept}"
          f" in {seconds:.0f} s)", flush=True)
    requests = Requests(dynamodb_client(), s3_client())
    seed = 0
    for name in SETTINGS:  # the warm-up: imports, clients, the model's read
        _file(adapters, _stored(adapters, BATCH, seed, name == "off, split"),
              _setting(adapters, name))
        seed += BATCH
    wall = dict.fromkeys(SETTINGS, 0.0)
    cpu = dict.fromkeys(SETTINGS, 0.0)
    counted: dict[str, Counter[str]] = {name: Counter() for name in SETTINGS}
    folders: Counter[str] = Counter()
    profile = cProfile.Profile(time.process_time) if arguments.profile else None
    for _ in range(arguments.messages // BATCH):
        for name in SETTINGS:
            keys = _stored(adapters, BATCH, seed, name == "off, split")
            seed += BATCH
            requests.counts.clear()
            if profile is not None and name == "on":
                profile.enable()
            started_wall, started_cpu = time.perf_counter(), time.process_time()
            _file(adapters, keys, _setting(adapters, name))
            cpu[name] += time.process_time() - started_cpu
            wall[name] += time.perf_counter() - started_wall
            if profile is not None:
                profile.disable()
            counted[name].update(requests.counts)
            if name == "on":
                folders.update(message.folder for message in (
                    adapters.mailboxes.get(ACCOUNT, message_id_of_key(key) or "")
                    for key in keys))
    peaks = {}
    for name in SETTINGS:
        peaks[name] = _peak_kib(adapters, name, seed)
        seed += BATCH
    model_kib = _model_in_memory_kib(kept.read_bytes())
    count = arguments.messages // BATCH * BATCH
    _report(count, cpu, wall, counted, peaks)
    print(f"\nthe decoded model held by the process: {model_kib:,.0f} KiB (tracemalloc); "
          f"this process's peak RSS: {_rss_peak_mib():.0f} MiB (training included, when "
          "it trained)")
    print(f"filed with the filter on: Junk {folders[JUNK_FOLDER]}, Inbox {folders[INBOX]} "
          "(half of them junk-like)")
    if profile is not None:
        print("\ncProfile of the filter-on batches (CPU time, cumulative):")
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


def _report(count: int, cpu: dict[str, float], wall: dict[str, float],
            counted: dict[str, Counter[str]], peaks: dict[str, float]) -> None:
    def row(label: str, values: dict[str, float], form: str, higher_is_better: bool) -> str:
        ratio = values["on"] / values["off"] if higher_is_better else values["off"] / values["on"]
        return (f"| {label} | " + " | ".join(format(values[name], form) for name in SETTINGS)
                + f" | {ratio:.2f}x |")

    print(f"\n{count} messages of ~10 KiB with each setting, batches of {BATCH}, one "
          f"account, {os.cpu_count()} cores, load average "
          f"{' '.join(f'{load:.1f}' for load in os.getloadavg())}; moto in its own process")
    print(f"| per message (filing process) | {' | '.join(SETTINGS)} | on / off |")
    print(f"|---|{'---:|' * (len(SETTINGS) + 1)}")
    print(row("CPU ms", {name: 1000 * cpu[name] / count for name in SETTINGS}, ".2f", False))
    print(row("messages per CPU-second", {name: count / cpu[name] for name in SETTINGS},
              ".1f", True))
    print(row("peak Python allocations filing a batch, KiB", peaks, ",.0f", False))
    print(row("moto-bound: messages per wall second (moto's speed, not ours)",
              {name: count / wall[name] for name in SETTINGS}, ".1f", True))
    print(f"\nthroughput that carries over (messages per CPU-second of the filing process), "
          f"on / off: {cpu['off'] / cpu['on']:.2f}x; on / off, split: "
          f"{cpu['off, split'] / cpu['on']:.2f}x (target at least 0.8x)")
    print("\nrequests per message:")
    operations = sorted({operation for name in SETTINGS for operation in counted[name]})
    print(f"| request | {' | '.join(SETTINGS)} |\n|---|{'---:|' * len(SETTINGS)}")
    for operation in operations:
        print(f"| {operation} | "
              + " | ".join(f"{counted[name][operation] / count:.2f}" for name in SETTINGS)
              + " |")


if __name__ == "__main__":
    main()
