"""`mailpipe up` as a user starts it, driven over real SMTP and HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

from mailpipe.local.launcher import MAILPIPE, StackProcess, free_port, start_stack
from tests.e2e.api_client import ApiClient, wait_until
from tests.e2e.aws_support import Aws

pytestmark = pytest.mark.e2e

SEED_MESSAGE = (b"From: Alice <alice@crepes.fr>\r\nTo: Bob <bob@hamburger.edu>\r\n"
                b"Subject: Test Email\r\n\r\nHello\r\nHow are you?\r\n")
PASSWORDS = {"bob@hamburger.edu": "bob-password", "carol@hamburger.edu": "carol-password"}


class RunningStack:
    def __init__(self, stack: StackProcess) -> None:
        self.stack = stack
        self.process = stack.process
        self.output = stack.output
        self.smtp_port = stack.smtp_port
        self.aws_port = stack.aws_port
        self.api = stack.api

    def token(self, address: str, password: str | None = None) -> str:
        return ApiClient(self.stack, address, password or PASSWORDS[address]).token

    def wait_for_inbox(self, token: str, count: int = 1, timeout: float = 20) -> list[dict]:
        def enough() -> list[dict]:
            response = requests.get(f"{self.api}/mailboxes/Inbox/messages", timeout=10,
                                    headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text
            messages: list[dict] = response.json()["messages"]
            return messages if len(messages) >= count else []

        return wait_until(enough, timeout, interval=0.1, what=f"{count} messages in the Inbox")


@pytest.fixture(scope="module")
def local_stack() -> Iterator[RunningStack]:
    # crepes.fr's mail goes to a closed port: delivery there is deferred, never lost.
    stack = start_stack(["hamburger.edu"], PASSWORDS, "--mx", f"crepes.fr=127.0.0.1:{free_port()}")
    yield RunningStack(stack)
    if stack.process.poll() is None:
        stack.process.kill()


def _transcript(port: int, lines: list[bytes]) -> list[int]:
    """Speak SMTP as the seed's client does, one line at a time; the reply codes."""
    codes = []
    with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
        reader = connection.makefile("rb")

        def reply() -> int:
            while True:
                line = reader.readline()
                if line[3:4] != b"-":
                    return int(line[:3])

        codes.append(reply())
        for line in lines:
            connection.sendall(line)
            codes.append(reply())
    return codes


def test_seed_transcript_reaches_bobs_inbox_over_http(local_stack):
    codes = _transcript(local_stack.smtp_port, [
        b"HELO crepes.fr\r\n",
        b"MAIL FROM: <alice@crepes.fr>\r\n",
        b"RCPT TO: <bob@hamburger.edu>\r\n",
        b"DATA\r\n",
        SEED_MESSAGE + b".\r\n",
        b"QUIT\r\n",
    ])
    assert codes == [220, 250, 250, 250, 354, 250, 221]

    token = local_stack.token("bob@hamburger.edu")
    [summary] = local_stack.wait_for_inbox(token)
    assert summary["from"] == "Alice <alice@crepes.fr>"
    assert summary["to"] == ["Bob <bob@hamburger.edu>"]
    assert summary["subject"] == "Test Email"
    raw = requests.get(f"{local_stack.api}/messages/{summary['id']}/raw", timeout=10,
                       headers={"Authorization": f"Bearer {token}"})
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "message/rfc822"
    trace, _, received_message = raw.content.partition(b"\r\nFrom: ")
    # The MX's verdict first (issue 28: no DNS server given, nothing published), then ours.
    assert trace.startswith(b"Authentication-Results: ")
    assert b"\r\nReceived: from crepes.fr" in trace
    assert b"From: " + received_message == SEED_MESSAGE


def test_unknown_and_foreign_recipients_are_refused_at_rcpt(local_stack):
    codes = _transcript(local_stack.smtp_port, [
        b"EHLO crepes.fr\r\n",
        b"MAIL FROM:<alice@crepes.fr>\r\n",
        b"RCPT TO:<nobody@hamburger.edu>\r\n",
        b"RCPT TO:<alice@crepes.fr>\r\n",
        b"QUIT\r\n",
    ])
    assert codes == [220, 250, 250, 550, 550, 221]


def test_accounts_see_only_their_own_mail(local_stack):
    codes = _transcript(local_stack.smtp_port, [
        b"EHLO crepes.fr\r\n", b"MAIL FROM:<alice@crepes.fr>\r\n",
        b"RCPT TO:<carol@hamburger.edu>\r\n", b"DATA\r\n",
        b"From: alice@crepes.fr\r\nTo: carol@hamburger.edu\r\nSubject: private\r\n\r\nx\r\n.\r\n",
        b"QUIT\r\n"])
    assert codes[-2:] == [250, 221]
    carol = local_stack.token("carol@hamburger.edu")
    [carols] = [m for m in local_stack.wait_for_inbox(carol) if m["subject"] == "private"]
    bob = {"Authorization": f"Bearer {local_stack.token('bob@hamburger.edu')}"}

    for path in (f"/messages/{carols['id']}", f"/messages/{carols['id']}/raw"):
        response = requests.get(local_stack.api + path, headers=bob, timeout=10)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        assert requests.get(local_stack.api + path, timeout=10).status_code == 401
    bobs_subjects = [m["subject"] for m in requests.get(
        f"{local_stack.api}/mailboxes/Inbox/messages", headers=bob, timeout=10).json()["messages"]]
    assert "private" not in bobs_subjects


def test_user_added_to_running_stack_can_receive_and_log_in(local_stack):
    added = subprocess.run(
        [MAILPIPE, "user", "add", "dave@hamburger.edu", "--password", "dave-password",
         "--aws-port", str(local_stack.aws_port)],
        capture_output=True, text=True, timeout=60, check=False)
    assert added.returncode == 0, added.stderr
    codes = _transcript(local_stack.smtp_port, [
        b"EHLO crepes.fr\r\n", b"MAIL FROM:<alice@crepes.fr>\r\n",
        b"RCPT TO:<dave@hamburger.edu>\r\n", b"DATA\r\n",
        b"From: alice@crepes.fr\r\nTo: dave@hamburger.edu\r\nSubject: welcome\r\n\r\nhi\r\n.\r\n",
        b"QUIT\r\n"])
    assert codes == [220, 250, 250, 250, 354, 250, 221]
    token = local_stack.token("dave@hamburger.edu", "dave-password")
    assert local_stack.wait_for_inbox(token)[0]["subject"] == "welcome"


def test_submission_with_starttls_and_auth_files_locally_and_keeps_remote_mail(local_stack):
    cert = local_stack.stack.state_dir / "tls" / "cert.pem"
    context = ssl.create_default_context(cafile=str(cert))
    with smtplib.SMTP("127.0.0.1", local_stack.stack.submission_port, timeout=15) as client:
        client.starttls(context=context)
        client.login("bob@hamburger.edu", PASSWORDS["bob@hamburger.edu"])
        refused = client.sendmail(
            "bob@hamburger.edu", ["carol@hamburger.edu", "zoe@crepes.fr"],
            b"From: bob@hamburger.edu\r\nTo: carol@hamburger.edu, zoe@crepes.fr\r\n"
            b"Subject: submitted\r\n\r\nhello\r\n")
    assert refused == {}
    carol = local_stack.token("carol@hamburger.edu")
    assert any(m["subject"] == "submitted" for m in local_stack.wait_for_inbox(carol, 2))
    bob = {"Authorization": f"Bearer {local_stack.token('bob@hamburger.edu')}"}
    deadline = time.monotonic() + 20
    sent: list[dict] = []
    while not sent and time.monotonic() < deadline:
        sent = requests.get(f"{local_stack.api}/mailboxes/Sent/messages", headers=bob,
                            timeout=10).json()["messages"]
        time.sleep(0.1)
    assert [m["subject"] for m in sent] == ["submitted"]
    # The remote recipient's job is deferred: crepes.fr's next hop refuses connections.
    listing = subprocess.run([MAILPIPE, "queue", "--aws-port", str(local_stack.aws_port)],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    [line] = [line for line in listing.splitlines() if "zoe@crepes.fr" in line]
    assert " crepes.fr zoe@crepes.fr " in line
    assert line.split()[3] in ("queued", "deferred")
    deadline = time.monotonic() + 30
    while line.split()[3] != "deferred" and time.monotonic() < deadline:
        time.sleep(0.5)
        listing = subprocess.run([MAILPIPE, "queue", "--aws-port", str(local_stack.aws_port)],
                                 capture_output=True, text=True, timeout=60, check=True).stdout
        [line] = [line for line in listing.splitlines() if "zoe@crepes.fr" in line]
    assert line.split()[3] == "deferred"
    assert "4.4.1 connection to 127.0.0.1" in line


def _child(stack: StackProcess, marker: bytes) -> int:
    """The pid of the stack's child process whose command line holds `marker`."""
    for entry in Path("/proc").iterdir():
        try:
            if (entry.name.isdigit()
                    and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    == stack.process.pid
                    and marker in (entry / "cmdline").read_bytes()):
                return int(entry.name)
        except (OSError, IndexError):
            continue  # gone meanwhile
    raise AssertionError(f"no child with {marker!r}")


def test_a_bucket_policy_deny_is_answered_403_and_the_edge_stores_nothing(local_stack):
    """moto answers every S3 request of the stack, the edge's PutObject too, and enforces
    bucket policies: under a Deny of PutObject on the mail bucket a client's put is
    refused 403 and the edge says 451 (try again later), and neither object is stored."""
    aws = Aws(local_stack.stack)
    bucket = aws.outputs["MessageBucketName"]
    try:
        before: str | None = aws.s3.get_bucket_policy(Bucket=bucket)["Policy"]
    except ClientError:
        before = None  # the stack gave the bucket no policy
    stored = _keys(aws, bucket)
    aws.s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Sid": "DenyEveryPut", "Effect": "Deny", "Principal": "*",
            "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    try:
        with pytest.raises(ClientError) as refused:
            aws.s3.put_object(Bucket=bucket, Key="denied/probe", Body=b"probe")
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        with smtplib.SMTP("127.0.0.1", local_stack.smtp_port, timeout=60) as client:
            client.ehlo("crepes.fr")
            client.mail("alice@crepes.fr")
            client.rcpt("bob@hamburger.edu")
            code, _ = client.data(SEED_MESSAGE.replace(b"Test Email", b"denied"))
        assert code == 451
    finally:
        if before is None:
            aws.s3.delete_bucket_policy(Bucket=bucket)
        else:
            aws.s3.put_bucket_policy(Bucket=bucket, Policy=before)
    assert _keys(aws, bucket) == stored


def _keys(aws: Aws, bucket: str) -> set[str]:
    pages = aws.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {entry["Key"] for page in pages for entry in page.get("Contents", [])}


def test_an_edge_that_dies_is_started_again_as_ecs_would(local_stack):
    os.kill(_child(local_stack.stack, b"edge_child\x00smtp"), signal.SIGKILL)
    wait_until(lambda: any("starting it again" in line for line in local_stack.output),
               timeout=10, interval=0.1, what="the restart in the stack's output")
    codes = wait_until(lambda: _sent_or_none(local_stack.smtp_port), timeout=30,
                       interval=0.2, what="the edge answering again")
    assert codes == [220, 250, 250, 250, 354, 250, 221]
    token = local_stack.token("bob@hamburger.edu", "bob-password")
    wait_until(lambda: any(message["subject"] == "after the restart"
                           for message in local_stack.wait_for_inbox(token, 1)),
               timeout=30, interval=0.2, what="the message sent after the restart filed")
    assert local_stack.process.poll() is None


def _sent_or_none(port: int) -> list[int] | None:
    try:
        return _transcript(port, [
            b"EHLO x\r\n", b"MAIL FROM:<alice@crepes.fr>\r\n",
            b"RCPT TO:<bob@hamburger.edu>\r\n", b"DATA\r\n",
            b"Subject: after the restart\r\n\r\nhi\r\n.\r\n", b"QUIT\r\n"])
    except OSError:
        return None


def test_sigterm_stops_the_stack_cleanly(local_stack):
    local_stack.process.send_signal(signal.SIGTERM)
    assert local_stack.process.wait(timeout=60) == 0
    assert any(line.startswith("mailpipe stopped") for line in local_stack.output)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", local_stack.smtp_port), timeout=2)
