"""`mailpipe imap-views backfill` as a user runs it against `mailpipe up`: mail filed over
SMTP, its views deleted as if stored before views existed, then made by the command; a
second run makes none; a run killed half-way is finished by the next; bytes gone are
counted, not fatal. On the same stack, its scheduled function (Junk emptied of old mail)
run by its timer and by `mailpipe schedule run`."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import smtplib
import subprocess
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from mailcore.adapters.aws.cognito_directory import CognitoAccountDirectory
from mailcore.adapters.aws.dynamodb_keys import (
    MESSAGE_PREFIX,
    VIEW_PREFIX,
    account_pk,
    imap_view_key,
)
from mailcore.adapters.aws.mailboxes import DynamoMailboxRepository
from mailcore.adapters.aws.mailboxes.views import MAX_VIEW_IN_ITEM, DynamoImapViews
from mailcore.adapters.aws.s3_store import S3RawMessageStore
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import JUNK, StoredMessage
from mailcore.domain.message import MessageSummary
from mailcore.imap_view.view import encode, make_view
from mailcore.services.changes import remove_for_good
from mailpipe.cli import main
from mailpipe.local.launcher import MAILPIPE, StackProcess, free_ports, start_stack
from mailpipe.local.stack import ROOT, outputs_file
from tests.contract.test_imap_views import many_parts
from tests.e2e.api_client import wait_until

pytestmark = pytest.mark.e2e
BOB, PASSWORD = "bob@hamburger.edu", "bob-password"
DAN = "dan@hamburger.edu"
ORDINARY, LARGE = 36, 3  # messages of 300 parts, and of 1000 (views beyond an item)
MESSAGES = ORDINARY + LARGE
LINE = re.compile(r"^imap views: (\d+) message\(s\) seen, (\d+) view\(s\) made, "
                  r"(\d+) already current, (\d+) failure\(s\)$")


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    stack = start_stack(["hamburger.edu"], {BOB: PASSWORD})
    yield stack
    stack.stop()


class _Stack:
    """The running stack's table and bucket, reached as the command reaches them."""

    def __init__(self, stack: StackProcess) -> None:
        outputs = json.loads(outputs_file(stack.state_dir, stack.aws_port).read_text())
        options: dict[str, Any] = {
            "endpoint_url": f"http://127.0.0.1:{stack.aws_port}", "region_name": "us-east-1",
            "aws_access_key_id": "local", "aws_secret_access_key": "local"}
        self.dynamodb = boto3.client("dynamodb", **options)
        self.s3 = boto3.client("s3", **options)
        self.table, self.bucket = outputs["MailboxTableName"], outputs["MessageBucketName"]
        self.views = DynamoImapViews(self.dynamodb, self.table, self.s3, self.bucket)

    def items(self, prefix: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": account_pk(BOB)},
                                          ":prefix": {"S": prefix}}}
        while True:
            page = self.dynamodb.query(**request)
            found += page["Items"]
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete_views(self, message_ids: list[str]) -> None:
        for message_id in message_ids:
            self.dynamodb.delete_item(TableName=self.table, Key=imap_view_key(BOB, message_id))

    def raw(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())


def _backfill(stack: StackProcess, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [MAILPIPE, "imap-views", "backfill", "--aws-port", str(stack.aws_port),
         "--state-dir", str(stack.state_dir), *extra], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def _finished(process: subprocess.Popen[str]) -> tuple[int, int, int, int]:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    [line] = out.splitlines()
    found = LINE.match(line)
    assert found, line
    seen, made, current, failed = (int(each) for each in found.groups())
    return seen, made, current, failed


def test_backfill_makes_the_missing_views_once_resumes_when_stopped_and_counts_lost_bytes(
        stack: StackProcess) -> None:
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=60) as client:
        for number in range(MESSAGES):
            raw = many_parts(300 if number < ORDINARY else 1000)
            assert client.sendmail("alice@crepes.fr", [BOB], raw) == {}
    aws = _Stack(stack)
    messages = wait_until(lambda: (found := aws.items(MESSAGE_PREFIX)) and len(found) == MESSAGES
                          and found, 300, interval=1, what=f"{MESSAGES} messages filed")
    raw_keys = {item["message_id"]["S"]: item["raw_key"]["S"] for item in messages}
    # Filing wrote each message's view (over an item's size: beside its bytes).
    assert wait_until(lambda: len(aws.items(VIEW_PREFIX)) == MESSAGES, 60,
                      what="the filed messages' views")
    assert sum("view_object" in item for item in aws.items(VIEW_PREFIX)) == LARGE
    aws.delete_views(list(raw_keys))  # as if filed before views existed
    assert aws.items(VIEW_PREFIX) == []

    # A run stopped half-way (killed: no chance to tidy up) ...
    first = _backfill(stack)
    deadline = time.monotonic() + 120
    while not aws.items(VIEW_PREFIX):
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    done_before = len(aws.items(VIEW_PREFIX))
    assert 0 < done_before < MESSAGES

    # ... is finished by the next, which does only what is missing.
    seen, made, current, failed = _finished(_backfill(stack))
    assert (seen, failed) == (MESSAGES, 0)
    assert current >= done_before and made == MESSAGES - current and made > 0
    # One at a time: a batch read decodes at most BATCH_VIEW_TEXT of views (these, of
    # hundreds of random part names, are some hundreds of KiB each).
    views = {message_id: view for message_id in raw_keys
             for view in aws.views.get_many(BOB, [message_id]).values()}
    assert set(views) == set(raw_keys)
    for message_id, view in views.items():
        assert view == make_view(aws.raw(raw_keys[message_id]))
    assert sum(len(encode(view)) > MAX_VIEW_IN_ITEM for view in views.values()) == LARGE

    # A second run makes none.
    assert _finished(_backfill(stack)) == (MESSAGES, 0, MESSAGES, 0)

    # A message whose bytes are gone is counted, and the run goes on and succeeds.
    lost = next(iter(raw_keys))
    aws.delete_views([lost])
    aws.s3.delete_object(Bucket=aws.bucket, Key=raw_keys[lost])
    assert _finished(_backfill(stack)) == (MESSAGES, 0, MESSAGES - 1, 1)
    # Only one account's messages, when asked.
    assert _finished(_backfill(stack, "--account", "carol@hamburger.edu")) == (0, 0, 0, 0)
    assert _finished(_backfill(stack, "--account", BOB)) == (MESSAGES, 0, MESSAGES - 1, 1)


def test_a_bad_argument_or_no_stack_is_one_line_and_non_zero(tmp_path: Any) -> None:
    # A stack's outputs left behind by a stack that is gone: nothing answers on its port.
    [gone] = free_ports(1)
    outputs_file(tmp_path, gone).write_text(json.dumps(
        {"MailboxTableName": "mailboxes", "MessageBucketName": "messages"}))
    for arguments, status, said in (
            (["--account", "not an address"], 2, "not an address"),
            (["--aws-port", "70000"], 2, "not a port"),
            (["--state-dir", str(tmp_path / "none")], 1, "no local stack on AWS port"),
            (["--state-dir", str(tmp_path), "--aws-port", str(gone)], 1,
             "imap-views backfill stopped")):
        result = subprocess.run([MAILPIPE, "imap-views", "backfill", *arguments],
                                capture_output=True, text=True, timeout=60, cwd=ROOT,
                                check=False)
        assert result.returncode == status, result.stderr
        [line] = result.stderr.splitlines()
        assert line.startswith("mailpipe") and said in line, line
        assert result.stdout == ""

    # A deployed stack, without AWS credentials anywhere.
    bare = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    bare.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_DEFAULT_REGION="us-east-1",
                AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
                AWS_EC2_METADATA_DISABLED="true", HOME=str(tmp_path))
    result = subprocess.run([MAILPIPE, "imap-views", "backfill", "--stack", "mailpipe"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
                            env=bare)
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("mailpipe: cannot read stack mailpipe"), line


def test_the_junk_expiry_schedule_runs_at_start_and_on_demand(stack: StackProcess) -> None:
    """The stack's timer invokes expire_junk shortly after start; `mailpipe schedule run`
    invokes it now, through the same local runtime, on the event its schedule sends."""
    assert wait_until(lambda: any("expire_junk ran on its schedule" in line
                                  for line in list(stack.output)), 60,
                      what="the schedule's first run")
    outputs = json.loads(outputs_file(stack.state_dir, stack.aws_port).read_text())
    aws = _Stack(stack)
    cognito = boto3.client("cognito-idp", endpoint_url=f"http://127.0.0.1:{stack.aws_port}",
                           region_name="us-east-1", aws_access_key_id="local",
                           aws_secret_access_key="local")
    CognitoAccountDirectory(cognito, outputs["UserPoolId"], outputs["UserPoolClientId"]
                            ).create_account(DAN, "dan-password")
    store = S3RawMessageStore(aws.s3, aws.bucket)
    mailboxes = DynamoMailboxRepository(aws.dynamodb, aws.table)
    now = datetime.now(UTC)

    def junk(days_ago: int) -> StoredMessage:
        received = now - timedelta(days=days_ago)
        message_id = new_message_id(int(received.timestamp() * 1000))
        raw = b"From: spam@junk.test\r\nSubject: cheap\r\n\r\nbuy now\r\n"
        raw_key = store.put(message_id, raw, Envelope(
            mail_from="spam@junk.test", rcpt_tos=(DAN,), peer="192.0.2.1", helo="h",
            tls=False, received_at=received))
        message = StoredMessage(
            account=DAN, message_id=message_id, folder=JUNK, received_at=received,
            raw_key=raw_key, size=len(raw), accepted_id=message_id, summary=MessageSummary(
                from_="spam@junk.test", to=(DAN,), cc=(), subject="cheap", date=None,
                message_id_header=None, snippet="buy now", has_attachments=False,
                parse_problem=None))
        assert mailboxes.file(message, holding=1)
        return message

    old, young = junk(31), junk(29)

    def schedule(*arguments: str) -> subprocess.CompletedProcess[str]:
        # The command's own code, run here (its function runs in a worker process).
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            status = main(["schedule", *arguments, "--aws-port", str(stack.aws_port),
                           "--state-dir", str(stack.state_dir)])
        return subprocess.CompletedProcess(arguments, status, out.getvalue(), err.getvalue())

    listed = schedule("list")
    assert listed.stdout.splitlines() == ["expire_junk rate(1 day) ExpireJunkFunction"]
    first, again = schedule("run", "expire_junk"), schedule("run", "expire_junk")
    assert (first.returncode, again.returncode) == (0, 0), first.stderr + again.stderr
    assert json.loads(first.stdout) == {"accounts": 2, "removed": 1, "finished": True}
    assert json.loads(again.stdout) == {"accounts": 2, "removed": 0, "finished": True}
    assert not store.exists(old.raw_key) and store.exists(young.raw_key)
    assert [m.message_id for m in mailboxes.list_folder(DAN, JUNK, 10, None).messages] == [
        young.message_id]
    unknown = schedule("run", "expire_everything")
    assert unknown.returncode == 2 and unknown.stdout == ""
    [line] = unknown.stderr.splitlines()
    assert "no schedule named 'expire_everything' (scheduled: expire_junk)" in line
    remove_for_good(DAN, young.message_id, mailboxes, store)  # the backfill counts every message
