"""Real SMTP software from Debian against a running edge: swaks and Postfix."""

from __future__ import annotations

import os
import shutil
import smtplib
import subprocess
import time
from pathlib import Path

import pytest

from mailcore.parsing.bounded import summarise
from mailpipe.local.launcher import free_port
from tests.edge_support import running_edge
from tests.postfix_support import postfix_relay


@pytest.fixture(autouse=True)
def _debian_tools() -> None:
    missing = [tool for tool in ("swaks", "postfix") if shutil.which(tool) is None]
    assert not missing, f"{missing} not installed: `make test` installs them (apt)"


def _swaks(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["swaks", "--ehlo", "laptop.test", "--pipeline", *arguments],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def attachment(tmp_path: Path) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(os.urandom(20_000))
    return path


def test_swaks_delivers_to_the_mx_with_pipelining_and_an_attachment(attachment):
    with running_edge() as edge:
        result = _swaks("--server", f"127.0.0.1:{edge.mx_port}", "--from", "alice@crepes.fr",
                        "--to", "bob@hamburger.edu", "--attach", f"@{attachment}")
        assert result.returncode == 0, result.stdout[-2000:]
        [key] = edge.store.message_keys()
        assert summarise(edge.store.get_raw(key)).has_attachments


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_swaks_submits_over_starttls_with_auth(mechanism, attachment):
    with running_edge() as edge:
        result = _swaks("--server", f"127.0.0.1:{edge.submission_port}", "--tls",
                        "--auth", mechanism, "--auth-user", "bob@hamburger.edu",
                        "--auth-password", "bob-password", "--from", "bob@hamburger.edu",
                        "--h-From", "bob@hamburger.edu", "--to", "zoe@elsewhere.test",
                        "--attach", f"@{attachment}")
        assert result.returncode == 0, result.stdout[-2000:]
        assert "235 2.7.0" in result.stdout
        [key] = edge.store.message_keys()
        assert edge.store.get_envelope(key).submitted_by == "bob@hamburger.edu"


def test_swaks_wrong_password_is_refused(attachment):
    with running_edge() as edge:
        result = _swaks("--server", f"127.0.0.1:{edge.submission_port}", "--tls",
                        "--auth", "PLAIN", "--auth-user", "bob@hamburger.edu",
                        "--auth-password", "nope", "--from", "bob@hamburger.edu",
                        "--to", "zoe@elsewhere.test")
        assert result.returncode != 0
        assert "535 5.7.8" in result.stdout
        assert edge.store.message_keys() == []


def test_postfix_relays_a_batch_into_the_edge_over_tls():
    batch = 20
    with running_edge() as edge:
        postfix_port = free_port()
        with postfix_relay(postfix_port, edge.mx_port) as log:
            client = _connect(postfix_port)
            for number in range(batch):
                client.sendmail("alice@crepes.test", ["bob@hamburger.edu", "carol@hamburger.edu"],
                                f"From: alice@crepes.test\r\nTo: bob@hamburger.edu\r\n"
                                f"Subject: batch {number}\r\n\r\nhello\r\n")
            client.quit()
            deadline = time.monotonic() + 60
            while len(edge.store.message_keys()) < batch and time.monotonic() < deadline:
                time.sleep(0.2)
            keys = edge.store.message_keys()
            assert len(keys) == batch, log.read_text()[-3000:]
            assert "status=sent (250 2.0.0 Ok: queued as" in log.read_text()
    subjects = sorted(summarise(edge.store.get_raw(key)).subject for key in keys)
    assert subjects == sorted(f"batch {number}" for number in range(batch))
    for key in keys:
        assert edge.store.get_envelope(key).rcpt_tos == ("bob@hamburger.edu",
                                                         "carol@hamburger.edu")
        assert b"by hamburger.edu (mailpipe) with ESMTPS" in edge.store.get_raw(key)


def _connect(port: int) -> smtplib.SMTP:
    deadline = time.monotonic() + 20
    while True:
        try:
            return smtplib.SMTP("127.0.0.1", port, timeout=10)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
