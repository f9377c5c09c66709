"""Nothing accepted is lost: storage faults mid-run, and a load from Postfix's smtp-source."""

from __future__ import annotations

import shutil
import smtplib
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from mailpipe.local.launcher import StackProcess, start_stack

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


def test_storage_fault_mid_run_gives_4xx_exactly_for_what_was_not_stored():
    switch = Path(tempfile.mkdtemp()) / "storage-down"
    stack = start_stack(["hamburger.edu"], {BOB: PASSWORD},
                        environment={"MAILPIPE_FAULT_STORAGE_SWITCH": str(switch)})
    try:
        outcomes: dict[str, int] = {}
        with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as client:
            client.ehlo("crepes.fr")
            for number in range(60):
                if number == 20:
                    switch.touch()
                if number == 40:
                    switch.unlink()
                subject = f"durable {number}"
                client.mail("alice@crepes.fr")
                client.rcpt(BOB)
                code, _ = client.data(f"From: alice@crepes.fr\r\nTo: {BOB}\r\n"
                                      f"Subject: {subject}\r\n\r\nbody\r\n".encode())
                outcomes[subject] = code
        accepted = {subject for subject, code in outcomes.items() if code == 250}
        assert len(accepted) == 40
        assert {code for code in outcomes.values() if code != 250} == {451}

        token = _token(stack)
        assert _wait_for_total(stack, token, len(accepted), timeout=60) == len(accepted)
        total, messages = _inbox(stack, token)
        assert sorted(m["subject"] for m in messages) == sorted(accepted)
        assert len({m["id"] for m in messages}) == total == len(accepted)
    finally:
        assert stack.stop() == 0
        shutil.rmtree(switch.parent, ignore_errors=True)


def test_smtp_source_load_of_2000_is_all_accepted_and_filed_once():
    messages = 2000
    stack = start_stack(["hamburger.edu"], {BOB: PASSWORD})
    try:
        result = subprocess.run(
            ["smtp-source", "-s", "20", "-m", str(messages), "-l", "10240",
             "-f", "alice@crepes.fr", "-t", BOB, "-M", "crepes.fr",
             f"127.0.0.1:{stack.smtp_port}"],
            capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        token = _token(stack)
        assert _wait_for_total(stack, token, messages, timeout=300) == messages
        total, listed = _inbox(stack, token)
        assert total == len(listed) == len({m["id"] for m in listed}) == messages
        # Every 250 the edge gave is in its log with the message's id.
        accepted = sum("message accepted" in line for line in stack.output)
        assert accepted == messages
    finally:
        assert stack.stop() == 0
