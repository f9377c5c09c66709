"""Learning junk from where mail is put (issue 29 item 3), over the template's resources in
moto: IMAP (imaplib against the real server) and the API change messages, their keywords
say the lesson, a notice for each change is queued on JunkLessonsQueue, and learn_junk run
on those notices teaches each account's filter: once however often a notice comes, the
same whatever the order, and undone when the user changes their mind."""

from __future__ import annotations

import imaplib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest

from mailcore.adapters.aws import clients
from mailcore.adapters.aws.sqs_junk_lessons import LessonNotice
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.junk import LearnedLesson, Lesson
from mailcore.domain.verdict import DmarcVerdict, Result, SpfVerdict, Verdict
from mailcore.junk.model import JunkModel
from mailcore.services.filing import file_inbound
from mailcore.wiring import aws_adapters
from tests.conftest import REGION, load_function
from tests.functional.api_support import Context, call
from tests.imap_support import RunningImap, running_imap

BOB, CAROL = "bob@hamburger.edu", "carol@hamburger.edu"
SPAMMER, FRIEND = "offers@junk.example", "alice@crepes.fr"
QUEUE_OUTPUT = "JunkLessonsQueueUrl"


@pytest.fixture
def lessons_stack(stack: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The stack with the API's and IMAP's environment: the lessons queue set, so that
    aws_adapters().mailboxes notify it."""
    api = stack.functions["ServeApiFunction"].environment
    monkeypatch.setenv("MAILPIPE_JUNK_LESSONS_QUEUE_URL", api["MAILPIPE_JUNK_LESSONS_QUEUE_URL"])
    aws_adapters.cache_clear()
    clients.sqs_client.cache_clear()
    yield stack
    aws_adapters.cache_clear()
    clients.sqs_client.cache_clear()


@pytest.fixture
def learn_junk(lessons_stack: Any) -> ModuleType:
    return load_function("learn_junk")


def _deliver(sender: str, subject: str, words: str) -> str:
    """A message from `sender` whose DMARC passed (so it proves its From address and
    domain), filed for Bob and Carol as file_message files it; its accepted id."""
    domain = sender.split("@")[1]
    raw = (f"From: {sender}\r\nTo: {BOB}, {CAROL}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{new_message_id()}@{domain}>\r\n\r\n{words}\r\n").encode()
    verdict = Verdict(spf=SpfVerdict(Result.PASS, domain),
                      dmarc=DmarcVerdict(Result.PASS, domain, "none"))
    envelope = Envelope(mail_from=sender, rcpt_tos=(BOB, CAROL), peer="192.0.2.1",
                        helo=domain, tls=True, received_at=datetime.now(UTC), verdict=verdict)
    adapters = aws_adapters()
    key = adapters.store.put(new_message_id(), raw, envelope)
    return file_inbound(key, adapters.store, adapters.mailboxes, adapters.domains,
                        references=adapters.references, views=adapters.imap_views).message_id


def _queued(stack: Any) -> list[dict[str, Any]]:
    """Every notice on the lessons queue, taken off it, as SQS records in queue order."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = stack.outputs[QUEUE_OUTPUT]
    records: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []):
        for message in messages:
            records.append({"messageId": message["MessageId"], "body": message["Body"],
                            "receiptHandle": message["ReceiptHandle"],
                            "eventSource": "aws:sqs", "awsRegion": REGION})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return records


def _notified(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(notice.account, message_id) for record in records
            for notice in [LessonNotice.from_json(record["body"])]
            for message_id in notice.message_ids]


def _learn(learn_junk: ModuleType, records: list[dict[str, Any]]) -> None:
    assert learn_junk.lambda_handler({"Records": records}, Context()) == {
        "batchItemFailures": []}


@dataclass(frozen=True)
class Filter:
    trained_junk: int
    trained_not_junk: int
    lessons: dict[str, LearnedLesson]
    history: dict[str, tuple[int, int]]
    model: bytes  # the token counts, as stored


def _filter(account: str, keys: list[str]) -> Filter:
    filters = aws_adapters().junk_filters
    state = filters.recipient_state(
        account, [SPAMMER, "junk.example", FRIEND, "crepes.fr"])
    return Filter(state.trained_junk, state.trained_not_junk, filters.lessons(account, keys),
                  {identity: (each.junk, each.not_junk)
                   for identity, each in state.history.items() if each.junk or each.not_junk},
                  filters.model(account, state.model_version).to_bytes())


def _model_version(account: str) -> int:
    return aws_adapters().junk_filters.recipient_state(account, ()).model_version


def _uid_of(client: imaplib.IMAP4, subject: str) -> str:
    status, found = client.uid("SEARCH", "SUBJECT", f'"{subject}"')
    assert status == "OK"
    [uid] = found[0].split()
    return uid.decode()


def _flags(client: imaplib.IMAP4, folder: str) -> dict[str, set[str]]:
    """Each message's flags in `folder`, by subject."""
    client.select(folder)
    _, fetched = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    found = {}
    for part in fetched:
        if isinstance(part, tuple):
            flags = set(re.search(rb"FLAGS \(([^)]*)\)", part[0]).group(1).decode().split())
            found[part[1].decode().strip().removeprefix("Subject: ")] = flags
    return found


def _teach_by_imap(imap: RunningImap, account: str) -> None:
    """What a user does in a mail client: 1 moved to Junk, 2 copied there, 3 flagged $Junk
    and unflagged again, 4 moved to Junk and back to the Inbox, 5 archived."""
    client = imap.logged_in(account)
    client.select("INBOX")
    # Clients that mark junk on the server look for the keywords here (RFC 5788).
    [permanent] = client.response("PERMANENTFLAGS")[1]
    assert {b"$Junk", b"$NotJunk", rb"\*"} <= set(permanent.strip(b"()").split())
    assert client.uid("MOVE", _uid_of(client, "one"), "Junk")[0] == "OK"
    assert client.uid("COPY", _uid_of(client, "two"), "Junk")[0] == "OK"
    three = _uid_of(client, "three")
    assert client.uid("STORE", three, "+FLAGS", "($Junk)")[0] == "OK"
    assert client.uid("STORE", three, "-FLAGS", "($Junk)")[0] == "OK"
    assert client.uid("MOVE", _uid_of(client, "four"), "Junk")[0] == "OK"
    client.select("Junk")
    assert client.uid("MOVE", _uid_of(client, "four"), "INBOX")[0] == "OK"
    client.select("INBOX")
    assert client.uid("MOVE", _uid_of(client, "five"), "Archive")[0] == "OK"
    # What the client sees: the folders and the keywords say each lesson.
    junk, inbox = _flags(client, "Junk"), _flags(client, "INBOX")
    assert sorted(junk) == ["one", "two"]
    assert all("$Junk" in flags and "$NotJunk" not in flags for flags in junk.values())
    assert "$NotJunk" in inbox["four"] and "$Junk" not in inbox["four"]
    assert not {"$Junk", "$NotJunk"} & (inbox["two"] | inbox["three"])
    assert "$NotJunk" in _flags(client, "Archive")["five"]
    client.logout()


def _messages(spam_words: str = "cheap pills casino winner",
              friend_words: str = "lunch tomorrow at noon") -> dict[str, str]:
    return {"one": _deliver(SPAMMER, "one", spam_words),
            "two": _deliver(SPAMMER, "two", f"{spam_words} bonus"),
            "three": _deliver(SPAMMER, "three", f"{spam_words} again"),
            "four": _deliver(FRIEND, "four", friend_words),
            "five": _deliver(FRIEND, "five", f"{friend_words} minutes")}


def test_imap_moves_copies_and_keywords_teach_once_in_any_order(lessons_stack, learn_junk):
    # As `mailpipe up` runs the template: learn_junk polls the queue, IMAP is told it.
    queue = lessons_stack.outputs[QUEUE_OUTPUT]
    [source] = [each for each in lessons_stack.queue_sources
                if each.function == "LearnJunkFunction"]
    assert (source.queue_url, source.report_batch_item_failures) == (queue, True)
    assert lessons_stack.containers["imap"].environment[
        "MAILPIPE_JUNK_LESSONS_QUEUE_URL"] == queue
    assert "MAILPIPE_JUNK_LESSONS_QUEUE_URL" not in lessons_stack.containers["edge"].environment
    accepted = _messages()
    adapters = aws_adapters()
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views,
                      store=adapters.store, references=adapters.references) as imap:
        _teach_by_imap(imap, BOB)
        bob_records = _queued(lessons_stack)
        _teach_by_imap(imap, CAROL)
        carol_records = _queued(lessons_stack)
    # A notice for each change of a lesson: the move, the copy (its own id), the keyword
    # set and cleared, the move in and out, the archiving.
    assert len(_notified(bob_records)) == len(_notified(carol_records)) == 7
    assert {account for account, _ in _notified(bob_records)} == {BOB}

    # Bob's notices all at once, then all of them again (SQS delivers at least once).
    _learn(learn_junk, bob_records)
    keys = list(accepted.values())
    bob = _filter(BOB, keys)
    assert (bob.trained_junk, bob.trained_not_junk) == (2, 2)
    assert {key: lesson.lesson for key, lesson in bob.lessons.items()} == {
        accepted["one"]: Lesson.JUNK, accepted["two"]: Lesson.JUNK,
        accepted["four"]: Lesson.NOT_JUNK, accepted["five"]: Lesson.NOT_JUNK}
    assert set(bob.lessons[accepted["one"]].identities) == {SPAMMER, "junk.example"}
    assert bob.history == {SPAMMER: (2, 0), "junk.example": (2, 0),
                           FRIEND: (0, 2), "crepes.fr": (0, 2)}
    assert JunkModel.from_bytes(bob.model).token_count > 0
    version = _model_version(BOB)
    _learn(learn_junk, bob_records)
    assert (_filter(BOB, keys), _model_version(BOB)) == (bob, version)  # nothing committed

    # Carol did the same; her notices come one at a time, last first: the same filter.
    for record in reversed(carol_records):
        _learn(learn_junk, [record])
    assert _filter(CAROL, keys) == bob


def test_changing_ones_mind_unlearns_junk_and_learns_not_junk(lessons_stack, learn_junk):
    accepted = _deliver(SPAMMER, "maybe", "cheap pills casino winner")
    adapters = aws_adapters()
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views,
                      store=adapters.store, references=adapters.references) as imap:
        client = imap.logged_in(BOB)
        client.select("INBOX")
        client.uid("MOVE", _uid_of(client, "maybe"), "Junk")
        _learn(learn_junk, _queued(lessons_stack))
        assert _filter(BOB, [accepted]).history[SPAMMER] == (1, 0)
        client.select("Junk")
        client.uid("MOVE", _uid_of(client, "maybe"), "INBOX")
        # An old notice delivered late, after the change of mind, teaches the current lesson.
        _learn(learn_junk, _queued(lessons_stack))
    after = _filter(BOB, [accepted])
    assert (after.trained_junk, after.trained_not_junk) == (0, 1)
    assert after.lessons[accepted].lesson is Lesson.NOT_JUNK
    assert after.history == {SPAMMER: (0, 1), "junk.example": (0, 1)}


def test_the_api_s_move_into_junk_queues_a_notice_that_teaches_junk(lessons_stack, learn_junk):
    api = load_function("serve_api")
    accepted = _deliver(SPAMMER, "api", "cheap pills casino winner")
    moved = call(api, "PATCH", f"/v1/messages/{accepted}", body={"mailbox": "Junk"})
    assert (moved.status, moved.json["mailbox"]) == (200, "Junk")
    assert "$Junk" in aws_adapters().mailboxes.get(BOB, accepted).flags
    records = _queued(lessons_stack)
    assert _notified(records) == [(BOB, accepted)]
    _learn(learn_junk, records)
    assert _filter(BOB, [accepted]).lessons[accepted].lesson is Lesson.JUNK
    assert call(api, "PATCH", f"/v1/messages/{accepted}", body={"seen": True}).status == 200
    assert _queued(lessons_stack) == []  # a change that teaches nothing new: no notice


def test_a_lesson_that_cannot_be_queued_never_fails_the_move(lessons_stack, learn_junk):
    api = load_function("serve_api")
    accepted = _deliver(SPAMMER, "lost", "cheap pills casino winner")
    boto3.client("sqs", region_name=REGION).delete_queue(
        QueueUrl=lessons_stack.outputs[QUEUE_OUTPUT])
    moved = call(api, "PATCH", f"/v1/messages/{accepted}", body={"mailbox": "Junk"})
    assert (moved.status, moved.json["mailbox"]) == (200, "Junk")
    # The keyword stays: the next change of it notifies again.
    assert "$Junk" in aws_adapters().mailboxes.get(BOB, accepted).flags


def test_a_message_gone_before_its_notice_is_learned_changes_nothing(lessons_stack, learn_junk):
    api = load_function("serve_api")
    accepted = _deliver(SPAMMER, "gone", "cheap pills casino winner")
    call(api, "PATCH", f"/v1/messages/{accepted}", body={"mailbox": "Junk"})
    records = _queued(lessons_stack)
    assert call(api, "DELETE", f"/v1/messages/{accepted}").status == 200  # to Trash
    assert call(api, "DELETE", f"/v1/messages/{accepted}").status == 200  # for good
    _learn(learn_junk, records)
    gone = _filter(BOB, [accepted])
    assert (gone.trained_junk, gone.lessons, gone.history) == (0, {}, {})


def test_operator_redrives_dead_lettered_lesson_notices_and_they_are_learned(
        lessons_stack, learn_junk, monkeypatch, capsys):
    from mailpipe import cli

    api = load_function("serve_api")
    accepted = _deliver(SPAMMER, "dead letter", "cheap pills casino winner")
    assert call(api, "PATCH", f"/v1/messages/{accepted}", body={"mailbox": "Junk"}).status == 200
    sqs = boto3.client("sqs", region_name=REGION)
    dead = lessons_stack.outputs["JunkLessonsDeadLetterQueueUrl"]
    for record in _queued(lessons_stack):  # as after the learner failed it again and again
        sqs.send_message(QueueUrl=dead, MessageBody=record["body"])
    monkeypatch.setattr(cli, "_target", lambda *_: (
        lessons_stack.outputs, lambda service: boto3.client(service, region_name=REGION)))

    assert cli.main(["queue", "redrive", "--junk-lessons"]) == 0
    assert capsys.readouterr().out == (
        "1 junk lesson notice(s) moved back from their dead-letter queue\n")
    assert cli.main(["queue", "redrive", "--junk-lessons"]) == 0  # again: nothing left
    assert capsys.readouterr().out.startswith("0 junk lesson notice(s)")
    records = _queued(lessons_stack)
    assert _notified(records) == [(BOB, accepted)]
    _learn(learn_junk, records)
    assert _filter(BOB, [accepted]).lessons[accepted].lesson is Lesson.JUNK
    with pytest.raises(SystemExit) as refused:  # one dead-letter queue at a time
        cli.main(["queue", "redrive", "--inbound", "--junk-lessons"])
    assert refused.value.code == 2
