"""The composition root for code running against AWS (Lambda functions and the edge).

Each adapter is made, and its module imported, the first time something asks for it: a
handler's cold start pays only for what that handler uses (issue 25: deliver_mail loaded
the Cognito directory and the composing and filing services it never calls, 1.9x the
import time of boto3 alone). tests/unit/test_import_graph.py holds each handler to that.
"""

from __future__ import annotations

import os
from functools import cache, cached_property
from typing import TYPE_CHECKING

from mailcore.adapters.aws.clients import (
    cognito_client,
    credentials,
    dynamodb_client,
    s3_client,
    secrets_client,
    sqs_client,
)
from mailcore.config import Settings

if TYPE_CHECKING:
    from mailcore.adapters.aws.cognito_directory import CognitoAccountDirectory
    from mailcore.adapters.aws.dynamodb_junk import DynamoJunkFilters
    from mailcore.adapters.aws.dynamodb_ledger import DynamoDeliveryLedger
    from mailcore.adapters.aws.dynamodb_raw_references import DynamoRawReferences
    from mailcore.adapters.aws.dynamodb_sending_limit import DynamoSendingLimit
    from mailcore.adapters.aws.dynamodb_suppressions import DynamoSuppressions
    from mailcore.adapters.aws.dynamodb_throttle import DynamoLoginThrottle
    from mailcore.adapters.aws.mailboxes import DynamoMailboxRepository
    from mailcore.adapters.aws.mailboxes.views import DynamoImapViews
    from mailcore.adapters.aws.s3_store import S3RawMessageStore
    from mailcore.adapters.aws.s3_writer import S3MessageWriter
    from mailcore.adapters.aws.sqs_junk_lessons import SqsJunkLessons
    from mailcore.ports import Mailboxes, SigningKeys
    from mailcore.services.composing import Composer
    from mailcore.services.outgoing import Outgoing
    from mailcore.services.recipients import HostedDomains


class AwsAdapters:
    """The adapters of one process, each made once, when first used."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def store(self) -> S3RawMessageStore:
        from mailcore.adapters.aws.s3_store import S3RawMessageStore
        return S3RawMessageStore(s3_client(), self.settings.bucket)

    @cached_property
    def mailboxes(self) -> Mailboxes:
        """The table's mailboxes; where the junk lessons queue is set (the API, IMAP),
        every change that changes a message's lesson notifies the learner (issue 29)."""
        if self.junk_lessons is None:
            return self.table_mailboxes
        from mailcore.services.junk_learning import LessonNotifyingMailboxes
        return LessonNotifyingMailboxes(self.table_mailboxes, self.junk_lessons)

    @cached_property
    def table_mailboxes(self) -> DynamoMailboxRepository:
        from mailcore.adapters.aws.mailboxes import DynamoMailboxRepository
        return DynamoMailboxRepository(dynamodb_client(), self.settings.table)

    @cached_property
    def junk_lessons(self) -> SqsJunkLessons | None:
        if not self.settings.junk_lessons_queue_url:
            return None
        from mailcore.adapters.aws.sqs_junk_lessons import SqsJunkLessons
        return SqsJunkLessons(sqs_client(), self.settings.junk_lessons_queue_url)

    @cached_property
    def imap_views(self) -> DynamoImapViews:
        from mailcore.adapters.aws.mailboxes.views import DynamoImapViews
        return DynamoImapViews(dynamodb_client(), self.settings.table, s3_client(),
                               self.settings.bucket)

    @cached_property
    def references(self) -> DynamoRawReferences:
        from mailcore.adapters.aws.dynamodb_raw_references import DynamoRawReferences
        return DynamoRawReferences(dynamodb_client(), self.settings.table)

    @cached_property
    def directory(self) -> CognitoAccountDirectory:
        from mailcore.adapters.aws.cognito_directory import CognitoAccountDirectory
        return CognitoAccountDirectory(cognito_client(), self.settings.user_pool_id,
                                       self.settings.user_pool_client_id)

    @cached_property
    def domains(self) -> HostedDomains:
        from mailcore.services.recipients import HostedDomains
        return HostedDomains.of(self.settings.domains)

    @cached_property
    def outgoing(self) -> Outgoing | None:
        if not self.settings.outgoing_queue_url:
            return None
        from mailcore.adapters.aws.sqs_outgoing import SqsDeliveryQueue
        from mailcore.services.outgoing import Outgoing
        return Outgoing(SqsDeliveryQueue(sqs_client(), self.settings.outgoing_queue_url),
                        self.ledger)

    @cached_property
    def ledger(self) -> DynamoDeliveryLedger:
        from mailcore.adapters.aws.dynamodb_ledger import DynamoDeliveryLedger
        return DynamoDeliveryLedger(dynamodb_client(), self.settings.table)

    @cached_property
    def throttle(self) -> DynamoLoginThrottle:
        from mailcore.adapters.aws.dynamodb_throttle import DynamoLoginThrottle
        return DynamoLoginThrottle(dynamodb_client(), self.settings.table)

    @cached_property
    def sending_limit(self) -> DynamoSendingLimit:
        from mailcore.adapters.aws.dynamodb_sending_limit import DynamoSendingLimit
        return DynamoSendingLimit(dynamodb_client(), self.settings.table,
                                  self.settings.sending_limit_per_hour)

    @cached_property
    def signing_keys(self) -> SigningKeys:
        """The DKIM keys (MAILPIPE_DKIM_SECRET); without that secret, none: mail is sent
        unsigned, with a warning each time. The SMTP edge is given the keys document in its
        environment instead (MAILPIPE_DKIM_KEYS), read once when it starts."""
        if self.settings.dkim_keys:
            from mailcore.adapters.memory.signing_keys import InMemorySigningKeys
            from mailcore.authentication.signing_keys import keys_of
            return InMemorySigningKeys(keys_of(self.settings.dkim_keys))
        if not self.settings.dkim_secret:
            from mailcore.adapters.memory.signing_keys import InMemorySigningKeys
            return InMemorySigningKeys()
        from mailcore.adapters.aws.secrets_signing_keys import SecretsSigningKeys
        return SecretsSigningKeys(secrets_client(), self.settings.dkim_secret)

    @cached_property
    def suppressions(self) -> DynamoSuppressions:
        from mailcore.adapters.aws.dynamodb_suppressions import DynamoSuppressions
        return DynamoSuppressions(dynamodb_client(), self.settings.table)

    @cached_property
    def junk_filters(self) -> DynamoJunkFilters:
        """Each account's junk filter; its decoded models are cached for the process."""
        from mailcore.adapters.aws.dynamodb_junk import DynamoJunkFilters
        return DynamoJunkFilters(dynamodb_client(), self.settings.table)

    @property
    def composer(self) -> Composer:
        from mailcore.services.composing import Composer
        return Composer(mailboxes=self.mailboxes, store=self.store,
                        directory=self.directory, domains=self.domains,
                        sending_limit=self.sending_limit, references=self.references,
                        hostname=self.settings.hostname, views=self.imap_views,
                        signing_keys=self.signing_keys, suppressions=self.suppressions)


@cache
def aws_adapters() -> AwsAdapters:
    return AwsAdapters(Settings.from_environ(os.environ))


def edge_writer() -> S3MessageWriter:
    """Where the edge stores what it accepts: the bucket S3RawMessageStore reads."""
    from mailcore.adapters.aws.s3_writer import S3MessageWriter
    return S3MessageWriter(s3_client(), aws_adapters().settings.bucket, credentials())
