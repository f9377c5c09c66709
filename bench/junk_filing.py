"""Filing with the junk filter on against off (issue 29), in one run, in one process.

The template's table and bucket in moto (in-process); one account whose filter learned
10,000 messages (half junk-like, half ham-like, from two vocabularies of made-up words in
Zipf-like frequencies, so that the model reaches its token cap), committed through the
store as the learner commits it. Then batches of 10 messages (Lambda's batch of
notifications) are filed for that account through file_inbound_together as
functions/file_message files them, alternately with the filter off (`junk=None`) and on
(`junk=AwsAdapters.junk_filing`), after one warm-up batch each (the warm process: the
model read and cached once). Each message is about 10 KiB, text and HTML alternatives,
half junk-like. Measured per message: wall time (throughput), this process's CPU (moto
included, the same for both), and the requests sent to DynamoDB and S3, by operation.

A third setting, "off, split", files without the filter with the junk-like half
quarantined by DMARC instead: the same two folders per batch as with the filter on, so
that the filter's own cost shows apart from the second folder's read and transaction
(moto's TransactWriteItems costs this process tenths of a second as the table grows).

    python bench/junk_filing.py [--messages 500] [--trained 10000] [--keep-model FILE]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REGION = "us-east-1"
ACCOUNT = "bob@example.test"
BATCH = 10
VOCABULARY = 20_000  # made-up words per kind, and as many shared


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=500, help="filed with each setting")
    parser.add_argument("--trained", type=int, default=10_000)
    parser.add_argument("--keep-model", type=Path, default=None,
                        help="a file to keep the trained model in between runs")
    arguments = parser.parse_args()
    print(__doc__.split("\n\n")[0])
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "POWERTOOLS_LOG_LEVEL": "WARNING"}.items():
        os.environ.setdefault(name, value)
    with mock_aws():
        from mailcore.adapters.aws.clients import dynamodb_client, s3_client
        from mailcore.domain.mailbox import INBOX
        from mailcore.domain.mailbox import JUNK as JUNK_FOLDER
        from mailcore.s3_keys import message_id_of_key
        from mailcore.wiring import aws_adapters
        from mailpipe.local.provision import provision

        provisioned = provision(ROOT, "bench", {"HostedDomains": "example.test"},
                                boto3.session.Session(region_name=REGION), region=REGION)
        for name, value in provisioned.functions["FileMessageFunction"].environment.items():
            if name.startswith("MAILPIPE_"):
                os.environ[name] = value
        adapters = aws_adapters()
        size, tokens, seconds = train(adapters, arguments.trained, arguments.keep_model)
        print(f"model after {arguments.trained:,} messages: {size:,} bytes, {tokens:,} tokens"
              f" (trained or read in {seconds:.0f} s)")
        requests = Requests(dynamodb_client(), s3_client())
        # "off, split": without the filter, the junk-like half quarantined by DMARC, so
        # that each batch is filed into the same two folders as with the filter on (one
        # folder read and one transaction per folder and batch).
        settings = {"off": None, "off, split": None, "on": adapters.junk_filing}
        seed = 0
        for name, junk in settings.items():  # the warm-up: imports, the model's read
            _file(adapters, _stored(adapters, BATCH, seed, name == "off, split"), junk)
            seed += BATCH
        wall = dict.fromkeys(settings, 0.0)
        cpu = dict.fromkeys(settings, 0.0)
        counted: dict[str, Counter[str]] = {name: Counter() for name in settings}
        folders: Counter[str] = Counter()
        for _ in range(arguments.messages // BATCH):
            for name, junk in settings.items():
                keys = _stored(adapters, BATCH, seed, name == "off, split")
                seed += BATCH
                requests.counts.clear()
                started_wall, started_cpu = time.perf_counter(), time.process_time()
                _file(adapters, keys, junk)
                wall[name] += time.perf_counter() - started_wall
                cpu[name] += time.process_time() - started_cpu
                counted[name].update(requests.counts)
                if junk is not None:
                    folders.update(message.folder for message in (
                        adapters.mailboxes.get(ACCOUNT, message_id_of_key(key) or "")
                        for key in keys))
        count = arguments.messages // BATCH * BATCH
        print(f"\n{count} messages of ~10 KiB with each setting, batches of {BATCH}, one "
              f"account, {os.cpu_count()} cores; moto in this process")
        print("| junk filter | messages per second | ms per message | CPU ms per message |")
        print("|---|---:|---:|---:|")
        for name in settings:
            print(f"| {name} | {count / wall[name]:.1f} | {1000 * wall[name] / count:.1f} | "
                  f"{1000 * cpu[name] / count:.1f} |")
        print(f"throughput on / off: {wall['off'] / wall['on']:.2f}x, on / off, split: "
              f"{wall['off, split'] / wall['on']:.2f}x (target at least 0.8x)")
        print("\nrequests per message:")
        operations = sorted({operation for name in settings for operation in counted[name]})
        print(f"| request | {' | '.join(settings)} |\n|---|{'---:|' * len(settings)}")
        for operation in operations:
            print(f"| {operation} | "
                  + " | ".join(f"{counted[name][operation] / count:.2f}" for name in settings)
                  + " |")
        print(f"\nfiled with the filter on: Junk {folders[JUNK_FOLDER]}, "
              f"Inbox {folders[INBOX]} (half of them junk-like)")


if __name__ == "__main__":
    main()
