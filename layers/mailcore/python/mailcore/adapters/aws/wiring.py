"""The composition root for code running against AWS (Lambda functions and the edge)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from mailcore.adapters.aws.clients import (
    cognito_client,
    credentials,
    dynamodb_client,
    s3_client,
    sqs_client,
)
from mailcore.adapters.aws.cognito_directory import CognitoAccountDirectory
from mailcore.adapters.aws.dynamodb_ledger import DynamoDeliveryLedger
from mailcore.adapters.aws.dynamodb_raw_references import DynamoRawReferences
from mailcore.adapters.aws.dynamodb_sending_limit import DynamoSendingLimit
from mailcore.adapters.aws.dynamodb_throttle import DynamoLoginThrottle
from mailcore.adapters.aws.mailboxes import DynamoMailboxRepository
from mailcore.adapters.aws.s3_store import S3RawMessageStore
from mailcore.adapters.aws.s3_writer import S3MessageWriter
from mailcore.adapters.aws.sqs_outgoing import SqsDeliveryQueue
from mailcore.adapters.faults import FilingFaults
from mailcore.config import Settings
from mailcore.services.composing import Composer
from mailcore.services.filing import Outgoing
from mailcore.services.recipients import HostedDomains


@dataclass(frozen=True)
class AwsAdapters:
    settings: Settings
    store: S3RawMessageStore
    mailboxes: DynamoMailboxRepository
    references: DynamoRawReferences
    directory: CognitoAccountDirectory
    domains: HostedDomains
    outgoing: Outgoing | None
    ledger: DynamoDeliveryLedger
    throttle: DynamoLoginThrottle
    sending_limit: DynamoSendingLimit
    filing_faults: FilingFaults | None

    @property
    def composer(self) -> Composer:
        return Composer(mailboxes=self.mailboxes, store=self.store,
                        directory=self.directory, domains=self.domains,
                        sending_limit=self.sending_limit, references=self.references,
                        hostname=self.settings.hostname)


@cache
def aws_adapters() -> AwsAdapters:
    settings = Settings.from_environ(os.environ)
    return AwsAdapters(
        settings=settings,
        store=S3RawMessageStore(s3_client(), settings.bucket),
        mailboxes=DynamoMailboxRepository(dynamodb_client(), settings.table),
        references=DynamoRawReferences(dynamodb_client(), settings.table),
        directory=CognitoAccountDirectory(
            cognito_client(), settings.user_pool_id, settings.user_pool_client_id
        ),
        domains=HostedDomains.of(settings.domains),
        outgoing=Outgoing(SqsDeliveryQueue(sqs_client(), settings.outgoing_queue_url),
                          DynamoDeliveryLedger(dynamodb_client(), settings.table))
        if settings.outgoing_queue_url else None,
        ledger=DynamoDeliveryLedger(dynamodb_client(), settings.table),
        throttle=DynamoLoginThrottle(dynamodb_client(), settings.table),
        sending_limit=DynamoSendingLimit(dynamodb_client(), settings.table,
                                         settings.sending_limit_per_hour),
        filing_faults=(FilingFaults.from_config(settings.fault_filing)
                       if settings.fault_filing else None),
    )


def edge_writer() -> S3MessageWriter:
    """Where the edge stores what it accepts: the bucket S3RawMessageStore reads."""
    return S3MessageWriter(s3_client(), aws_adapters().settings.bucket, credentials())
