"""Nothing accepted is lost: storage faults mid-run, and a load from Postfix's smtp-source."""

from __future__ import annotations

import shutil
import smtplib
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from mailpipe.local.launcher import start_stack
from tests.e2e.api_client import ApiClient, wait_until
from tests.e2e.aws_support import Aws

pytestmark = pytest.mark.e2e
BOB, PASSWORD = "bob@hamburger.edu", "bob-password"


def _wait_for_total(client: ApiClient, expected: int, timeout: float) -> int:
    """The Inbox's total once it reaches `expected`, after a pause in which anything
    beyond `expected` (a duplicate) would show; the last total seen on timeout."""
    try:
        wait_until(lambda: client.folder_total() >= expected, timeout, interval=0.5)
    except AssertionError:
        return client.folder_total()
    time.sleep(2)
    return client.folder_total()


def test_storage_fault_mid_load_gives_4xx_exactly_for_what_was_not_stored():
    """Four sessions send at once; storage goes down after 150 messages and comes back
    after 300. Every 250 is filed, once; every other answer is 451 (try again)."""
    switch = Path(tempfile.mkdtemp()) / "storage-down"
    stack = start_stack(["hamburger.edu"], {BOB: PASSWORD},
                        environment={"MAILPIPE_FAULT_STORAGE_SWITCH": str(switch)})
    try:
        outcomes: dict[str, int] = {}
        sent = iter(range(600))
        lock = threading.Lock()

        def session() -> None:
            with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as client:
                client.ehlo("crepes.fr")
                while True:
                    with lock:
                        number = next(sent, None)
                        if number == 150:
                            switch.touch()
                        if number == 300:
                            switch.unlink()
                    if number is None:
                        return
                    subject = f"durable {number}"
                    client.mail("alice@crepes.fr")
                    client.rcpt(BOB)
                    try:
                        code, _ = client.data(f"From: alice@crepes.fr\r\nTo: {BOB}\r\n"
                                              f"Subject: {subject}\r\n\r\nbody\r\n".encode())
                    except smtplib.SMTPDataError as exc:
                        code = exc.smtp_code
                    outcomes[subject] = code

        threads = [threading.Thread(target=session) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert len(outcomes) == 600
        accepted = {subject for subject, code in outcomes.items() if code == 250}
        refused = {code for code in outcomes.values() if code != 250}
        assert refused == {451} and 300 <= len(accepted) < 600

        bob = ApiClient(stack, BOB, PASSWORD)
        assert _wait_for_total(bob, len(accepted), timeout=120) == len(accepted)
        total, messages = bob.folder_total(), bob.messages()
        assert sorted(m["subject"] for m in messages) == sorted(accepted)
        assert len({m["id"] for m in messages}) == total == len(accepted)
    finally:
        assert stack.stop() == 0
        shutil.rmtree(switch.parent, ignore_errors=True)


def test_smtp_source_load_of_10000_is_all_accepted_filed_once_and_queues_drain():
    messages = 10_000
    stack = start_stack(["hamburger.edu"], {BOB: PASSWORD})
    try:
        result = subprocess.run(
            ["smtp-source", "-s", "20", "-m", str(messages), "-l", "10240",
             "-f", "alice@crepes.fr", "-t", BOB, "-M", "crepes.fr",
             f"127.0.0.1:{stack.smtp_port}"],
            capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        bob = ApiClient(stack, BOB, PASSWORD)
        assert _wait_for_total(bob, messages, timeout=900) == messages
        total, listed = bob.folder_total(), bob.messages()
        assert total == len(listed) == len({m["id"] for m in listed}) == messages
        # Every 250 the edge gave is in its log with the message's id.
        accepted = sum("message accepted" in line for line in stack.output)
        assert accepted == messages
        wait_until(Aws(stack).empty, 60, interval=1, what="every queue empty")
    finally:
        assert stack.stop() == 0
