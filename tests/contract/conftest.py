"""Each port twice: its in-memory fake and its AWS adapter on the template's own resources in
moto. The tests beside this file are written against the port alone, so a fake that
drifts from the adapter it stands in for fails them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from mailcore.adapters.aws.clients import cognito_client, dynamodb_client, s3_client, sqs_client
from mailcore.adapters.aws.cognito_directory import CognitoAccountDirectory
from mailcore.adapters.aws.dynamodb_ledger import DynamoDeliveryLedger
from mailcore.adapters.aws.dynamodb_raw_references import DynamoRawReferences
from mailcore.adapters.aws.dynamodb_sending_limit import DynamoSendingLimit
from mailcore.adapters.aws.dynamodb_throttle import DynamoLoginThrottle
from mailcore.adapters.aws.mailboxes import DynamoMailboxRepository
from mailcore.adapters.aws.mailboxes.views import DynamoImapViews
from mailcore.adapters.aws.s3_store import S3RawMessageStore
from mailcore.adapters.aws.sqs_outgoing import SqsDeliveryQueue
from mailcore.adapters.memory.directory import InMemoryAccountDirectory
from mailcore.adapters.memory.ledger import InMemoryDeliveryLedger
from mailcore.adapters.memory.login_throttle import InMemoryLoginThrottle
from mailcore.adapters.memory.mailbox import InMemoryMailboxRepository
from mailcore.adapters.memory.outgoing import InMemoryDeliveryQueue
from mailcore.adapters.memory.raw_references import InMemoryRawReferences
from mailcore.adapters.memory.sending_limit import InMemorySendingLimit
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.adapters.memory.views import InMemoryImapViews
from mailcore.domain.delivery import DeliveryJob
from mailcore.ports import (
    AccountDirectory,
    AccountListing,
    DeliveryLedger,
    DeliveryQueue,
    ImapViews,
    LoginThrottle,
    Mailboxes,
    MessageStore,
    RawReferences,
    SendingLimit,
)
from mailpipe.local.provision import Provisioned

BACKINGS = ["memory", "moto"]


class Clock:
    """Time that tests move by hand, given to both sides alike."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _moto(request: pytest.FixtureRequest) -> Provisioned | None:
    if request.param == "memory":
        return None
    provisioned: Provisioned = request.getfixturevalue("stack")
    return provisioned


@dataclass
class MailboxSide:
    mailboxes: Mailboxes
    references: RawReferences


@pytest.fixture(params=BACKINGS)
def mailbox_side(request: pytest.FixtureRequest) -> MailboxSide:
    stack = _moto(request)
    if stack is None:
        references = InMemoryRawReferences()
        return MailboxSide(InMemoryMailboxRepository(references), references)
    table = stack.outputs["MailboxTableName"]
    return MailboxSide(DynamoMailboxRepository(dynamodb_client(), table),
                       DynamoRawReferences(dynamodb_client(), table))


@dataclass
class ViewSide:
    """Mailboxes, the bytes' store and the IMAP views beside them, of one backing."""

    mailboxes: Mailboxes
    references: RawReferences
    store: MessageStore
    views: ImapViews
    table: str | None = None  # the table's name, on moto


@pytest.fixture(params=BACKINGS)
def view_side(request: pytest.FixtureRequest) -> ViewSide:
    stack = _moto(request)
    if stack is None:
        references = InMemoryRawReferences()
        memory = InMemoryMailboxRepository(references)
        return ViewSide(memory, references, InMemoryMessageStore(), InMemoryImapViews(memory))
    table, bucket = stack.outputs["MailboxTableName"], stack.outputs["MessageBucketName"]
    return ViewSide(DynamoMailboxRepository(dynamodb_client(), table),
                    DynamoRawReferences(dynamodb_client(), table),
                    S3RawMessageStore(s3_client(), bucket),
                    DynamoImapViews(dynamodb_client(), table, s3_client(), bucket), table)


@pytest.fixture(params=BACKINGS)
def message_store(request: pytest.FixtureRequest) -> MessageStore:
    stack = _moto(request)
    if stack is None:
        return InMemoryMessageStore()
    return S3RawMessageStore(s3_client(), stack.outputs["MessageBucketName"])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=BACKINGS)
def throttle(request: pytest.FixtureRequest, clock: Clock) -> LoginThrottle:
    stack = _moto(request)
    if stack is None:
        return InMemoryLoginThrottle(max_per_address=3, max_per_client=5, window_seconds=900,
                                     clock=clock)
    return DynamoLoginThrottle(dynamodb_client(), stack.outputs["MailboxTableName"],
                               max_per_address=3, max_per_client=5, window_seconds=900,
                               clock=clock)


@pytest.fixture(params=BACKINGS)
def sending_limit(request: pytest.FixtureRequest, clock: Clock) -> SendingLimit:
    stack = _moto(request)
    if stack is None:
        return InMemorySendingLimit(per_hour=10, clock=clock)
    return DynamoSendingLimit(dynamodb_client(), stack.outputs["MailboxTableName"], 10,
                              clock=clock)


@pytest.fixture(params=BACKINGS)
def references(request: pytest.FixtureRequest) -> RawReferences:
    stack = _moto(request)
    if stack is None:
        return InMemoryRawReferences()
    return DynamoRawReferences(dynamodb_client(), stack.outputs["MailboxTableName"])


@pytest.fixture(params=BACKINGS)
def ledger(request: pytest.FixtureRequest) -> DeliveryLedger:
    stack = _moto(request)
    if stack is None:
        return InMemoryDeliveryLedger()
    return DynamoDeliveryLedger(dynamodb_client(), stack.outputs["MailboxTableName"])


@dataclass
class DirectorySide:
    directory: AccountDirectory
    add: Callable[[str, str], None]  # how an administrator adds an account on this side
    listing: AccountListing


@pytest.fixture(params=BACKINGS)
def directory_side(request: pytest.FixtureRequest) -> DirectorySide:
    stack = _moto(request)
    if stack is None:
        memory = InMemoryAccountDirectory()
        return DirectorySide(memory, memory.create_account, memory)
    cognito = CognitoAccountDirectory(cognito_client(), stack.outputs["UserPoolId"],
                                      stack.outputs["UserPoolClientId"])
    return DirectorySide(cognito, cognito.create_account, cognito)


@dataclass
class QueueSide:
    queue: DeliveryQueue
    receive: Callable[[], list[tuple[DeliveryJob, str]]]  # what the consumer is given now


@pytest.fixture(params=BACKINGS)
def queue_side(request: pytest.FixtureRequest) -> QueueSide:
    stack = _moto(request)
    if stack is None:
        memory = InMemoryDeliveryQueue()
        return QueueSide(memory, memory.receive)
    url = stack.outputs["OutgoingQueueUrl"]
    sqs = sqs_client()

    def receive() -> list[tuple[DeliveryJob, str]]:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [(DeliveryJob.from_json(message["Body"]), message["ReceiptHandle"])
                for message in messages]

    return QueueSide(SqsDeliveryQueue(sqs, url), receive)
