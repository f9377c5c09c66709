"""Issue 29's junk filter as an attacker drives it (the review's findings): hostile
messages filed by file_message against the template's bucket, queue and table in moto,
and learned from by the learner over the same stores."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from mailcore.adapters.aws import clients
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.junk import JUNK_KEYWORD, Lesson
from mailcore.domain.mailbox import INBOX
from mailcore.s3_keys import message_id_of_key
from mailcore.services.junk_learning import learn
from mailcore.wiring import aws_adapters
from tests.conftest import load_function
from tests.dns_support import Dnsmasq, Zone
from tests.functional.test_edge_junk_signals import LISTING, S3, _edge, _send, s3
from tests.functional.test_edge_junk_signals import _message as _edge_message
from tests.functional.test_file_message import Context, _notifications
from tests.functional.test_junk_lessons import _queued
from tests.imap_support import running_imap
from tests.junk_support import message, train

TRAINED = "bob@hamburger.edu"
__all__ = ["s3"]  # the edge tests' moto S3 server, a fixture here too
# RFC 2046 5.1.1 wants 1 to 70 characters; a remote sender may give none. The MIME
# reader split on None, and the TypeError failed every filing try of the message.
EMPTY_BOUNDARY = (b"From: <offers@crepes.fr>\r\nTo: <bob@hamburger.edu>\r\n"
                  b"Subject: hello\r\nContent-Type: multipart/mixed; boundary=\"\"\r\n\r\n"
                  b"--\r\nContent-Type: text/plain\r\n\r\nlunch tomorrow?\r\n----\r\n")


@pytest.fixture
def file_message(stack):
    return load_function("file_message")


def _store(raw: bytes, *rcpts: str) -> str:
    envelope = Envelope(mail_from="offers@crepes.fr", rcpt_tos=rcpts, peer="192.0.2.1",
                        helo="crepes.fr", tls=False, received_at=datetime.now(UTC))
    return aws_adapters().store.put(new_message_id(), raw, envelope)


def test_a_message_with_an_empty_boundary_is_filed_and_learned_from(stack, file_message):
    adapters = aws_adapters()
    train(adapters.junk_filters, TRAINED)  # so that filing reads the message's words
    hostile = _store(EMPTY_BOUNDARY, TRAINED)
    ordinary = _store(message(7, True, "offers@crepes.fr"), TRAINED)
    event = _notifications(stack)
    assert len(event["Records"]) == 2

    assert file_message.lambda_handler(event, Context()) == {"batchItemFailures": []}

    filed = adapters.mailboxes.get(TRAINED, message_id_of_key(hostile))
    assert filed.folder == INBOX and filed.junk_verdict is not None
    assert not filed.junk_verdict.junk
    # The owner moves both into Junk: the hostile one teaches, and keeps no other lesson
    # of the same batch from being learned.
    ids = [filed.message_id, message_id_of_key(ordinary)]
    for message_id in ids:
        adapters.mailboxes.update(TRAINED, message_id, lambda stored: replace(
            stored, flags=stored.flags | {JUNK_KEYWORD}))
    result = learn([(TRAINED, message_id) for message_id in ids], adapters.mailboxes,
                   adapters.store, adapters.junk_filters)
    assert result.learned == 2
    learned = adapters.junk_filters.lessons(TRAINED, ids)
    assert {lesson.lesson for lesson in learned.values()} == {Lesson.JUNK}
    assert len(learned) == 2


def test_over_imap_the_empty_boundary_message_is_searched_moved_and_learned(
        stack, file_message, monkeypatch):
    api = stack.functions["ServeApiFunction"].environment
    monkeypatch.setenv("MAILPIPE_JUNK_LESSONS_QUEUE_URL",
                       api["MAILPIPE_JUNK_LESSONS_QUEUE_URL"])
    aws_adapters.cache_clear()
    clients.sqs_client.cache_clear()
    adapters = aws_adapters()
    _store(EMPTY_BOUNDARY, TRAINED)
    assert file_message.lambda_handler(_notifications(stack), Context()) == {
        "batchItemFailures": []}
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views,
                      store=adapters.store, references=adapters.references) as imap:
        client = imap.logged_in(TRAINED)
        client.select("INBOX")
        status, found = client.uid("SEARCH", "TEXT", "lunch")
        assert status == "OK" and len(found[0].split()) == 1
        assert client.uid("MOVE", found[0], "Junk")[0] == "OK"
        assert client.noop()[0] == "OK"  # the session goes on
    records = _queued(stack)
    assert len(records) == 1
    learn_junk = load_function("learn_junk")
    assert learn_junk.lambda_handler({"Records": records}, Context()) == {
        "batchItemFailures": []}
    state = adapters.junk_filters.recipient_state(TRAINED, ())
    assert (state.trained_junk, state.trained_not_junk) == (1, 0)
    aws_adapters.cache_clear()
    clients.sqs_client.cache_clear()


@pytest.fixture(scope="module")
def hostile_blocklist() -> Iterator[Dnsmasq]:
    """The test blocklist zone answering as broken or hijacked ones do: a non-loopback
    address (a resolver that answers every name), many refusals at once, and a listing
    mixed with an answer outside 127.0.0.0/8."""
    zone = Zone(a={f"4.0.0.127.{LISTING}": ["192.0.2.1"],
                   f"5.0.0.127.{LISTING}": [f"127.255.255.{n}" for n in range(200, 256)],
                   f"6.0.0.127.{LISTING}": ["10.0.0.1", "127.0.0.2"]})
    with Dnsmasq(zone) as server:
        yield server


def test_hostile_blocklist_answers_are_not_listings_and_every_message_is_taken(
        s3: S3, hostile_blocklist: Dnsmasq) -> None:
    expected = {"127.0.0.4": (), "127.0.0.5": (), "127.0.0.6": (LISTING,)}
    with _edge(s3, hostile_blocklist.address) as edge:
        sent = {source: _send(edge, source, _edge_message(f"from {source}"))
                for source in expected}
    for source, message_id in sent.items():
        assert s3.envelope(message_id).signals.dnsbl == expected[source]
