"""Junk emptied of old mail (issue 29 item 7), over the template's table, bucket and user
pool in moto: messages filed into Junk as received 31 and 29 days ago, through the mailbox
port, each account's junk_days in its filter's settings, and the expiry run as the
scheduled function runs it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mailcore.adapters.aws.clients import dynamodb_client
from mailcore.adapters.aws.mailboxes import DynamoMailboxRepository
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.junk import FilterSettings
from mailcore.domain.mailbox import INBOX, JUNK, StoredMessage
from mailcore.domain.message import MessageSummary
from mailcore.errors import MessageNotFound
from mailcore.services.junk_expiry import ExpiryRun, expire_all_junk
from mailcore.wiring import aws_adapters
from mailpipe.local.schedules import rate_seconds

BOB, CAROL, DAVE = "bob@hamburger.edu", "carol@hamburger.edu", "dave@hamburger.edu"
NOW = datetime.now(UTC).replace(microsecond=0)
RAW = b"From: spam@junk.test\r\nSubject: cheap\r\n\r\nbuy now\r\n"


@pytest.fixture
def accounts(stack) -> None:
    for address in (BOB, CAROL, DAVE):
        aws_adapters().directory.create_account(address, "Correct-Horse-9")


def _bytes() -> str:
    envelope = Envelope(mail_from="spam@junk.test", rcpt_tos=(BOB,), peer="192.0.2.1",
                        helo="h", tls=True, received_at=NOW)
    return aws_adapters().store.put(new_message_id(), RAW, envelope)


def _file(account: str, folder: str, days_ago: float, raw_key: str | None = None,
          holding: int = 1) -> StoredMessage:
    received = NOW - timedelta(days=days_ago)
    message_id = new_message_id(int(received.timestamp() * 1000))
    message = StoredMessage(
        account=account, message_id=message_id, folder=folder, received_at=received,
        raw_key=raw_key or _bytes(), size=len(RAW), accepted_id=message_id,
        summary=MessageSummary(from_="spam@junk.test", to=(account,), cc=(), subject="cheap",
                               date=None, message_id_header=None, snippet="buy now",
                               has_attachments=False, parse_problem=None))
    assert aws_adapters().mailboxes.file(message, holding=holding)
    return message


def _run(out_of_time=lambda: False, now: datetime = NOW) -> ExpiryRun:
    adapters = aws_adapters()
    return expire_all_junk(adapters.directory, now, adapters.mailboxes, adapters.store,
                           adapters.junk_filters, out_of_time)


def _moved_into_junk(message: StoredMessage, days_ago: float) -> StoredMessage:
    """Moved through the table's mailboxes as the API and IMAP move, by an adapter whose
    clock says it is `days_ago` days before NOW."""
    then = NOW - timedelta(days=days_ago)
    mailboxes = DynamoMailboxRepository(dynamodb_client(), aws_adapters().settings.table,
                                        clock=lambda: then)
    return mailboxes.update(message.account, message.message_id,
                            lambda m: replace(m, folder=JUNK))


def _present(message: StoredMessage) -> bool:
    try:
        aws_adapters().mailboxes.get(message.account, message.message_id)
    except MessageNotFound:
        return False
    return True


def _bytes_kept(message: StoredMessage) -> bool:
    return aws_adapters().store.exists(message.raw_key)


def test_junk_older_than_30_days_goes_for_good_with_bytes_nobody_else_needs(accounts) -> None:
    old, young = _file(BOB, JUNK, 31), _file(BOB, JUNK, 29)
    old_in_inbox = _file(BOB, INBOX, 31)
    shared = _file(BOB, JUNK, 31, holding=2)  # its bytes are Carol's Inbox copy's too
    carols = _file(CAROL, INBOX, 31, raw_key=shared.raw_key, holding=0)

    first = _run()
    assert first == ExpiryRun(accounts=3, removed=2, finished=True)
    assert not _present(old) and not _bytes_kept(old)
    assert not _present(shared) and _bytes_kept(shared) and _present(carols)
    assert all(_present(m) and _bytes_kept(m) for m in (young, old_in_inbox))
    junk = aws_adapters().mailboxes.folder_named(BOB, JUNK)
    assert (junk.total, junk.unread) == (1, 1)

    # Run again (the schedule's next day, or the same event delivered twice): nothing more.
    assert _run() == ExpiryRun(accounts=3, removed=0, finished=True)
    assert _present(young) and _present(carols) and _bytes_kept(shared)


def test_an_account_s_own_junk_days_decide_for_it_alone(accounts) -> None:
    aws_adapters().junk_filters.save_settings(DAVE, replace(FilterSettings(), junk_days=7))
    daves_old, daves_young = _file(DAVE, JUNK, 8), _file(DAVE, JUNK, 6)
    bobs = _file(BOB, JUNK, 8)
    assert _run().removed == 1
    assert not _present(daves_old)
    assert _present(daves_young) and _present(bobs)


def test_a_run_out_of_time_stops_and_the_next_one_goes_on(accounts) -> None:
    messages = [_file(BOB, JUNK, 40 - day) for day in range(5)]
    calls = 0

    def out_of_time() -> bool:  # the budget runs out after two removals
        nonlocal calls
        calls += 1
        return calls > 3  # one check for the account, then one before each removal

    cut = _run(out_of_time)
    assert cut == ExpiryRun(accounts=1, removed=2, finished=False)
    # Oldest first: what was left is the youngest of them.
    assert [_present(m) for m in messages] == [False, False, True, True, True]
    assert _run() == ExpiryRun(accounts=3, removed=3, finished=True)
    assert not any(_present(m) for m in messages)


def test_the_template_schedules_it_daily_as_the_local_runtime_reads_it(stack) -> None:
    assert [(source.name, source.expression, source.function) for source in stack.schedules
            ] == [("expire_junk", "rate(1 day)", "ExpireJunkFunction")]
    assert [rate_seconds(each) for each in ("rate(1 day)", "rate(5 minutes)")] == [86400, 300]
    with pytest.raises(ValueError, match="only rate"):
        rate_seconds("cron(0 3 * * ? *)")


def test_junk_days_count_from_when_a_message_came_into_junk(accounts) -> None:
    today = _file(BOB, INBOX, 40)  # an old message its owner moves into Junk now
    aws_adapters().mailboxes.update(BOB, today.message_id, lambda m: replace(m, folder=JUNK))
    copied = aws_adapters().mailboxes.copy(BOB, _file(BOB, INBOX, 40).message_id, JUNK)
    long_ago, lately = _moved_into_junk(_file(BOB, INBOX, 40), 31), _moved_into_junk(
        _file(BOB, INBOX, 40), 29)
    filed = _file(BOB, JUNK, 31)  # filed into Junk when received: there since then
    assert long_ago.folder_since == NOW - timedelta(days=31)

    first = _run()
    assert first == ExpiryRun(accounts=3, removed=2, finished=True, kept=3)
    assert not _present(long_ago) and not _present(filed)
    assert all(_present(m) for m in (today, copied, lately))
    # Run again: the same three are read and kept, nothing more goes.
    assert _run() == ExpiryRun(accounts=3, removed=0, finished=True, kept=3)
    assert all(_present(m) for m in (today, copied, lately))
    # Kept only until they have been in Junk junk_days: then they go, and cost no more.
    assert _run(now=NOW + timedelta(days=2)) == ExpiryRun(3, 1, True, kept=2)
    assert not _present(lately) and _present(today)
    assert _run(now=NOW + timedelta(days=31)) == ExpiryRun(3, 2, True, kept=0)
    assert not any(_present(m) for m in (today, copied))
    assert _run(now=NOW + timedelta(days=31)) == ExpiryRun(3, 0, True, kept=0)
    inbox = aws_adapters().mailboxes.folder_named(BOB, INBOX)
    assert inbox.total == 1  # the copy's original stays where it was
