"""Requests the AWS adapters make per message, counted on the client as they are sent: the
ones that are not needed are not made (docs/PERFORMANCE.md section 6 prices the rest)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import boto3

from mailcore.adapters.aws.dynamodb_keys import (
    ACCOUNT_PREFIX,
    FOLDER_PREFIX,
    PARTITION_PREFIXES,
    RAW_PREFIX,
    raw_references_key,
)
from mailcore.adapters.aws.dynamodb_ledger import DynamoDeliveryLedger
from mailcore.adapters.aws.dynamodb_raw_references import DynamoRawReferences
from mailcore.adapters.aws.mailboxes import DynamoMailboxRepository
from mailcore.adapters.aws.mailboxes import messages as messages_module
from mailcore.adapters.aws.mailboxes.views import DynamoImapViews
from mailcore.adapters.aws.sqs_outgoing import SqsDeliveryQueue
from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.delivery_status import RecipientState, RecipientStatus
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.s3_keys import message_id_of_key, message_key
from mailcore.services.filing import Outgoing, file_inbound, file_inbound_together
from mailcore.services.recipients import HostedDomains
from mailcore.wiring import aws_adapters
from tests.conftest import REGION
from tests.contract.test_mailboxes import BOB, _message


def _counted_client() -> tuple[Any, Counter[str]]:
    """A DynamoDB client that counts its calls by operation, and the counter."""
    client = boto3.client("dynamodb", region_name=REGION)
    calls: Counter[str] = Counter()
    client.meta.events.register("before-call.dynamodb.*",
                                lambda model, **_: calls.update([model.name]))
    return client, calls


def _views(client: Any, stack: Any) -> DynamoImapViews:
    """The IMAP views on the counted client: their writes are filing's requests too."""
    return DynamoImapViews(client, stack.outputs["MailboxTableName"],
                           boto3.client("s3", region_name=REGION),
                           stack.outputs["MessageBucketName"])


def test_filing_that_loses_the_race_for_the_folder_does_not_read_it_again(stack):
    table = stack.outputs["MailboxTableName"]
    client, calls = _counted_client()
    mailboxes = DynamoMailboxRepository(client, table)
    rival = DynamoMailboxRepository(boto3.client("dynamodb", region_name=REGION), table)
    first, second = _message(minutes=1), _message(minutes=2)
    raced: list[bool] = []

    def file_first_in_between(**_: Any) -> None:
        # After `second` read the folder, `first` takes its next UID and MODSEQ.
        if not raced:
            raced.append(rival.file(first))

    client.meta.events.register("before-call.dynamodb.TransactWriteItems",
                                file_first_in_between)
    assert mailboxes.file(second) is True

    assert raced == [True]
    assert calls == {"GetItem": 1, "TransactWriteItems": 2}  # the refusal told the state
    assert [mailboxes.get(BOB, message.message_id).uid for message in (first, second)] == [1, 2]
    inbox = mailboxes.folder_named(BOB, "Inbox")
    assert (inbox.total, inbox.uid_next) == (2, 3)


def _partition_kind(transact_item: dict[str, Any]) -> str:
    """The partition's prefix (an account's, a raw message's): whose item it writes."""
    operation = next(iter(transact_item.values()))
    pk = (operation.get("Key") or operation["Item"])["pk"]["S"]
    return next(prefix for prefix in PARTITION_PREFIXES if pk.startswith(prefix))


def test_the_references_are_held_in_the_first_copy_s_transaction(stack):
    """No write of their own: the first copy's transaction holds them all, before any
    copy exists; the later copies' transactions leave them be, and so does a repeat."""
    table = stack.outputs["MailboxTableName"]
    client, calls = _counted_client()
    transactions: list[list[str]] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems",
        lambda params, **_: transactions.append([_partition_kind(item)
                                                 for item in params["TransactItems"]]))
    adapters = aws_adapters()
    envelope = Envelope(mail_from="alice@crepes.fr", rcpt_tos=(BOB, "carol@hamburger.edu"),
                        peer="192.0.2.1", helo="crepes.fr", tls=True,
                        received_at=datetime.now(UTC))
    key = adapters.store.put(new_message_id(), b"Subject: hi\r\n\r\nhi\r\n", envelope)

    def file_it() -> tuple[str, ...]:
        return file_inbound(key, adapters.store, DynamoMailboxRepository(client, table),
                            HostedDomains(frozenset({"hamburger.edu"})),
                            references=DynamoRawReferences(client, table),
                            views=_views(client, stack)).filed_for

    assert file_it() == (BOB, "carol@hamburger.edu")
    # Each copy: its folder, its write; then both copies' IMAP views in one write.
    assert calls == {"GetItem": 2, "TransactWriteItems": 2, "BatchWriteItem": 1}
    # The message, its folder, the change log; the first with the references' item too.
    assert transactions == [[ACCOUNT_PREFIX, ACCOUNT_PREFIX, ACCOUNT_PREFIX, RAW_PREFIX],
                            [ACCOUNT_PREFIX, ACCOUNT_PREFIX, ACCOUNT_PREFIX]]
    def references() -> dict[str, str]:
        return dict(boto3.client("dynamodb", region_name=REGION).get_item(
            TableName=table, Key=raw_references_key(key))["Item"]["refs"])

    assert references() == {"N": "2"}
    assert file_it() == ()  # a repeated notification: both copies there, nothing held again
    assert references() == {"N": "2"}


def test_only_a_folder_s_first_changes_write_its_uidvalidity_and_name(stack):
    """Once a folder's item has them and a MODSEQ that pins the change to that very item,
    filing moves its counters alone (a smaller expression for DynamoDB to evaluate)."""
    table = stack.outputs["MailboxTableName"]
    client = boto3.client("dynamodb", region_name=REGION)
    expressions: list[str] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems",
        lambda params, **_: expressions.extend(
            item["Update"]["UpdateExpression"] for item in params["TransactItems"]
            if "Update" in item and item["Update"]["Key"]["sk"]["S"].startswith(FOLDER_PREFIX)))
    mailboxes = DynamoMailboxRepository(client, table)
    # SELECT before any mail makes the item with a UIDVALIDITY and no MODSEQ yet.
    validity = mailboxes.open_folder(BOB, "Sent").uid_validity
    for minutes in range(3):
        assert mailboxes.file(_message(folder="Inbox", minutes=minutes)) is True
    assert mailboxes.file(_message(folder="Sent", minutes=3)) is True
    assert mailboxes.file(_message(folder="Sent", minutes=4)) is True

    first_writes = ["uid_validity = if_not_exists" in expression
                    and "folder_name = :name" in expression for expression in expressions]
    # Inbox: made by its first message; Sent: by the SELECT, at MODSEQ 0.
    assert first_writes == [True, False, False, True, False]
    inbox, sent = (mailboxes.folder_named(BOB, name) for name in ("Inbox", "Sent"))
    assert (inbox.name, inbox.total, inbox.uid_next, inbox.highest_modseq) == ("Inbox", 3, 4, 3)
    assert inbox.uid_validity > 0
    assert (sent.name, sent.uid_validity, sent.uid_next) == ("Sent", validity, 3)


def test_a_delivery_attempt_records_its_statuses_in_one_write(stack):
    client, calls = _counted_client()
    ledger = DynamoDeliveryLedger(client, stack.outputs["MailboxTableName"])
    message_id = new_message_id()
    ledger.record_queued(DeliveryJob(message_id, message_key(message_id), BOB, "crepes.fr",
                                     ("alice@crepes.fr", "anne@crepes.fr")))
    calls.clear()
    statuses = [RecipientStatus("alice@crepes.fr", RecipientState.DELIVERED, 1, "250 ok"),
                RecipientStatus("anne@crepes.fr", RecipientState.DEFERRED, 1, "451 later")]
    ledger.record(message_id, "crepes.fr", statuses)
    assert calls == {"UpdateItem": 1}
    assert ledger.statuses(message_id, "crepes.fr") == {
        status.recipient: status for status in statuses}


def test_the_first_filing_of_submitted_mail_reads_no_delivery_record(stack):
    table = stack.outputs["MailboxTableName"]
    client, calls = _counted_client()
    adapters = aws_adapters()
    ledger = DynamoDeliveryLedger(client, table)
    queue = SqsDeliveryQueue(boto3.client("sqs", region_name=REGION),
                             stack.outputs["OutgoingQueueUrl"])
    envelope = Envelope(mail_from=BOB, rcpt_tos=("alice@crepes.fr",), peer="192.0.2.1",
                        helo="laptop", tls=True, received_at=datetime.now(UTC),
                        submitted_by=BOB)
    key = adapters.store.put(new_message_id(), b"From: " + BOB.encode() + b"\r\n\r\nhi\r\n",
                             envelope)

    def file_it() -> tuple[str, ...]:
        return file_inbound(key, adapters.store, DynamoMailboxRepository(client, table),
                            HostedDomains(frozenset({"hamburger.edu"})),
                            Outgoing(queue, ledger),
                            references=DynamoRawReferences(client, table),
                            views=_views(client, stack)).queued_for

    assert file_it() == ("alice@crepes.fr",)
    # The Sent copy's folder read and transaction (which holds the references), the job's
    # record, the Sent copy's IMAP view.
    assert calls == {"GetItem": 1, "TransactWriteItems": 1, "UpdateItem": 1,
                     "BatchWriteItem": 1}
    calls.clear()
    file_it()  # a repeat: the job's record says it was queued
    assert calls["GetItem"] == 2  # the folder, then the job's record
    sqs = boto3.client("sqs", region_name=REGION)
    jobs = sqs.receive_message(QueueUrl=stack.outputs["OutgoingQueueUrl"],
                               MaxNumberOfMessages=10).get("Messages", [])
    assert len(jobs) == 1



def test_a_writer_that_files_whenever_the_loser_waits_does_not_starve_it(stack, monkeypatch):
    """Two pollers filing one account's mail: the winner of a race goes on filing. The loser
    files with the state its refusal gave, at once; had it paused first, the winner would
    have filed again meanwhile, every time, until the loser gave up (seen locally)."""
    table = stack.outputs["MailboxTableName"]
    client, calls = _counted_client()
    mailboxes = DynamoMailboxRepository(client, table)
    winner = DynamoMailboxRepository(boto3.client("dynamodb", region_name=REGION), table)
    filed_by_winner = [winner.file(_message(minutes=1))]
    monkeypatch.setattr(messages_module, "back_off",
                        lambda attempt: filed_by_winner.append(winner.file(
                            _message(minutes=100 + attempt))))

    def winner_files_first(**_: Any) -> None:
        if len(filed_by_winner) == 1:
            filed_by_winner.append(winner.file(_message(minutes=2)))

    client.meta.events.register("before-call.dynamodb.TransactWriteItems", winner_files_first)
    loser = _message(minutes=3)
    mailboxes.file(loser)  # read the folder after the first, refused after the second

    assert filed_by_winner == [True, True]
    assert calls == {"GetItem": 1, "TransactWriteItems": 2}
    assert mailboxes.get(BOB, loser.message_id).uid == 3


def test_a_batch_for_one_folder_costs_one_folder_read_and_one_write(stack):
    """Lambda hands file_message up to 10 notifications at once: their first copies share
    the folder's read and one transaction, and a repeated batch costs no more."""
    table = stack.outputs["MailboxTableName"]
    client, calls = _counted_client()
    transactions: list[int] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems",
        lambda params, **_: transactions.append(len(params["TransactItems"])))
    adapters = aws_adapters()
    envelope = Envelope(mail_from="alice@crepes.fr", rcpt_tos=(BOB,), peer="192.0.2.1",
                        helo="crepes.fr", tls=True, received_at=datetime.now(UTC))
    keys = [adapters.store.put(new_message_id(), b"Subject: hi\r\n\r\nhi\r\n", envelope)
            for _ in range(10)]

    def file_them() -> list[Any]:
        return file_inbound_together(keys, adapters.store,
                                     DynamoMailboxRepository(client, table),
                                     HostedDomains(frozenset({"hamburger.edu"})),
                                     references=DynamoRawReferences(client, table),
                                     views=_views(client, stack))

    assert [outcome.filed_for for outcome in file_them()] == [(BOB,)] * 10
    # The ten messages' IMAP views in one write as well (BatchWriteItem takes 25).
    assert calls == {"GetItem": 1, "TransactWriteItems": 1, "BatchWriteItem": 1}
    assert transactions == [1 + 3 * 10]  # the folder; each message, its change, its refs
    # A repeated batch puts the same views again (a try that stopped after filing left none).
    assert [outcome.already_filed_for for outcome in file_them()] == [(BOB,)] * 10
    assert calls == {"GetItem": 2, "TransactWriteItems": 2, "BatchWriteItem": 2}
    assert [adapters.mailboxes.get(BOB, message_id_of_key(key)).uid for key in keys] == list(
        range(1, 11))


def test_messages_filed_together_stay_within_a_transaction_s_limits(stack):
    """DynamoDB takes at most 100 items and 4 MB in one transaction (moto checks
    neither): large messages are split over as many as it takes."""
    table = stack.outputs["MailboxTableName"]
    client = boto3.client("dynamodb", region_name=REGION)
    transactions: list[list[dict[str, Any]]] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems",
        lambda params, **_: transactions.append(params["TransactItems"]))
    messages = [_message(minutes=minutes, subject="s" * 200_000) for minutes in range(40)]

    assert DynamoMailboxRepository(client, table).file_together(
        [(message, 1) for message in messages]) == [True] * 40

    assert len(transactions) >= 2
    for items in transactions:
        assert len(items) <= 100
        assert len(json.dumps(items)) < 4 * 1024 * 1024


def test_the_junk_filter_costs_one_read_per_batch_and_no_model_read_when_warm(stack):
    """Issue 29 item 6: the filter's state of every recipient of a filing batch (model
    version, settings, history with the sender) in one BatchGetItem, so at most one per
    message; the model read once, then held by the process."""
    from mailcore.adapters.aws.dynamodb_junk import DynamoJunkFilters
    from mailcore.adapters.aws.dynamodb_keys import JUNK_MODEL_SORT_KEY, JUNK_PREFIX
    from mailcore.domain.mailbox import INBOX, JUNK
    from mailcore.services.junk_filing import JunkFiling
    from tests.junk_support import message, train

    table = stack.outputs["MailboxTableName"]
    carol = "carol@hamburger.edu"
    train(DynamoJunkFilters(boto3.client("dynamodb", region_name=REGION), table), BOB)
    client, calls = _counted_client()
    junk_reads: list[str] = []  # the filter's items each request reads, by sort key
    client.meta.events.register("provide-client-params.dynamodb.GetItem", lambda params, **_: (
        junk_reads.append(params["Key"]["sk"]["S"])
        if params["Key"]["pk"]["S"].startswith(JUNK_PREFIX) else None))
    client.meta.events.register(
        "provide-client-params.dynamodb.BatchGetItem", lambda params, **_: junk_reads.append(
            "batch" if all(key["pk"]["S"].startswith(JUNK_PREFIX)
                           for key in params["RequestItems"][table]["Keys"]) else "other"))
    junk = JunkFiling(DynamoJunkFilters(client, table))  # a new process: nothing cached
    adapters = aws_adapters()
    envelope = Envelope(mail_from="alice@crepes.fr", rcpt_tos=(BOB, carol), peer="192.0.2.1",
                        helo="crepes.fr", tls=True, received_at=datetime.now(UTC))

    def file_batch(seeds: range, with_filter: bool) -> list[str]:
        keys = [adapters.store.put(new_message_id(), message(seed, seed % 2 == 1), envelope)
                for seed in seeds]
        outcomes = file_inbound_together(
            keys, adapters.store, DynamoMailboxRepository(client, table),
            HostedDomains(frozenset({"hamburger.edu"})),
            references=DynamoRawReferences(client, table), views=_views(client, stack),
            junk=junk if with_filter else None)
        assert all(set(outcome.filed_for) == {BOB, carol} for outcome in outcomes)
        return keys

    file_batch(range(1, 2), True)  # cold, one message: the model of Bob's version read once
    assert Counter(junk_reads) == {"batch": 1, JUNK_MODEL_SORT_KEY: 1}
    calls.clear()
    junk_reads.clear()
    file_batch(range(2, 12), False)
    without = Counter(calls)
    calls.clear()
    keys = file_batch(range(12, 22), True)  # warm, ten messages

    assert junk_reads == ["batch"]  # one for the batch's 20 copies, no model
    # Besides the filter's one read: Bob's first copies go to two folders (Inbox, Junk)
    # instead of one, so one more folder read and write (one per folder and batch).
    assert calls - without == Counter({"BatchGetItem": 1, "GetItem": 1,
                                       "TransactWriteItems": 1})
    assert without - calls == Counter()
    assert calls["BatchGetItem"] - without["BatchGetItem"] <= len(keys)  # ≤ 1 per message
    assert [adapters.mailboxes.get(BOB, message_id_of_key(key)).folder
            for key in keys] == [INBOX, JUNK] * 5
    assert {adapters.mailboxes.get(carol, message_id_of_key(key)).folder
            for key in keys} == {INBOX}
