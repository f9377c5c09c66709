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
import requests

from mailpipe.local.launcher import StackProcess, start_stack
from tests.e2e.aws_support import Aws

pytestmark = pytest.mark.e2e
BOB, PASSWORD = "bob@hamburger.edu", "bob-password"


def _inbox_total(stack: StackProcess, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    folders = requests.get(f"{stack.api}/mailboxes", headers=headers, timeout=30).json()
    return int(next(f["total"] for f in folders["mailboxes"] if f["name"] == "Inbox"))


def _inbox(stack: StackProcess, token: str) -> tuple[int, list[dict]]:
    """(the Inbox's counted total, every message listed page by page)."""
    headers = {"Authorization": f"Bearer {token}"}
    total = _inbox_total(stack, token)
    messages: list[dict] = []
    cursor = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{stack.api}/mailboxes/Inbox/messages", headers=headers,
                            params=params, timeout=30).json()
        messages += page["messages"]
        cursor = page["cursor"]
        if not cursor:
            return total, messages


def _token(stack: StackProcess) -> str:
    return requests.post(f"{stack.api}/session", json={"address": BOB, "password": PASSWORD},
                         timeout=30).json()["token"]


def _wait_for_total(stack: StackProcess, token: str, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    total = -1
    while time.monotonic() < deadline:
        total = _inbox_total(stack, token)
        if total >= expected:
            time.sleep(2)  # anything beyond expected would be a duplicate: let it show
            return _inbox_total(stack, token)
        time.sleep(0.5)
    return total


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

        token = _token(stack)
        assert _wait_for_total(stack, token, len(accepted), timeout=120) == len(accepted)
        total, messages = _inbox(stack, token)
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
        token = _token(stack)
        assert _wait_for_total(stack, token, messages, timeout=900) == messages
        total, listed = _inbox(stack, token)
        assert total == len(listed) == len({m["id"] for m in listed}) == messages
        # Every 250 the edge gave is in its log with the message's id.
        accepted = sum("message accepted" in line for line in stack.output)
        assert accepted == messages
        aws = Aws(stack)
        deadline = time.monotonic() + 60
        while not aws.empty() and time.monotonic() < deadline:
            time.sleep(1)
        assert aws.empty()
    finally:
        assert stack.stop() == 0
