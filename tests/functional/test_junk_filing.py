"""file_message with the junk filter (issue 29), against the template's bucket, queue and
table in moto: one delivery to a trained and an untrained account, each copy in its own
folder with its verdict, and the same notification filed twice."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.junk import JUNK_KEYWORD, NOT_JUNK_KEYWORD, DecidedBy
from mailcore.domain.mailbox import INBOX, JUNK
from mailcore.s3_keys import message_id_of_key
from mailcore.wiring import aws_adapters
from tests.conftest import load_function
from tests.functional.test_file_message import Context, _notifications
from tests.junk_support import message, train

TRAINED, UNTRAINED = "bob@hamburger.edu", "carol@hamburger.edu"


@pytest.fixture
def file_message(stack):
    return load_function("file_message")


def _store(raw: bytes, *rcpts: str) -> str:
    envelope = Envelope(mail_from="spammer@crepes.fr", rcpt_tos=rcpts, peer="192.0.2.1",
                        helo="crepes.fr", tls=False, received_at=datetime.now(UTC))
    return aws_adapters().store.put(new_message_id(), raw, envelope)


def _totals(account: str) -> dict[str, int]:
    return {folder.name: folder.total for folder in aws_adapters().mailboxes.folders(account)}


def test_a_junk_like_message_goes_to_junk_for_the_trained_account_only(stack, file_message):
    train(aws_adapters().junk_filters, TRAINED)
    junk_key = _store(message(1, True, "spammer@crepes.fr"), TRAINED, UNTRAINED)
    ham_key = _store(message(2, False, "spammer@crepes.fr"), TRAINED, UNTRAINED)
    event = _notifications(stack)
    assert len(event["Records"]) == 2

    for _ in range(2):  # SQS delivers at least once: the same notifications again
        assert file_message.lambda_handler(event, Context()) == {"batchItemFailures": []}

    mailboxes = aws_adapters().mailboxes
    junked = mailboxes.get(TRAINED, message_id_of_key(junk_key))
    assert junked.folder == JUNK
    assert junked.junk_verdict is not None and junked.junk_verdict.junk
    assert junked.junk_verdict.decided_by is DecidedBy.CONTENT
    assert junked.junk_verdict.reasons == ("content",)
    assert not {JUNK_KEYWORD, NOT_JUNK_KEYWORD} & junked.flags
    kept = mailboxes.get(TRAINED, message_id_of_key(ham_key))
    assert kept.folder == INBOX and kept.junk_verdict is not None
    assert not kept.junk_verdict.junk
    for key in (junk_key, ham_key):
        untrained = mailboxes.get(UNTRAINED, message_id_of_key(key))
        assert untrained.folder == INBOX
        assert untrained.junk_verdict is not None
        assert untrained.junk_verdict.reasons == ("untrained",)
    # One copy of each message per account, counted in its folder, after two filings.
    assert (_totals(TRAINED).get(JUNK), _totals(TRAINED).get(INBOX)) == (1, 1)
    assert (_totals(UNTRAINED).get(JUNK, 0), _totals(UNTRAINED).get(INBOX)) == (0, 2)
