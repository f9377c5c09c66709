"""The composition root for code running against AWS (Lambda functions and the edge)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache

from mailcore.adapters.aws.clients import (
    cognito_client,
    dynamodb_client,
    s3_client,
    secrets_client,
    sqs_client,
)
from mailcore.adapters.aws.cognito_directory import CognitoAccountDirectory
from mailcore.adapters.aws.dynamodb_ledger import DynamoDeliveryLedger
from mailcore.adapters.aws.dynamodb_mailbox import DynamoMailboxRepository
from mailcore.adapters.aws.s3_store import S3RawMessageStore
from mailcore.adapters.aws.sqs_outgoing import SqsDeliveryQueue
from mailcore.adapters.dns_next_hop import (
    DnsNextHopResolver,
    RelayNextHop,
    parse_hop,
    parse_overrides,
)
from mailcore.adapters.smtp_client import SmtpClientPool
from mailcore.config import ConfigurationError, Settings
from mailcore.domain.retry import RetryPolicy
from mailcore.ports import NextHopResolver
from mailcore.services.recipients import HostedDomains


@dataclass(frozen=True)
class AwsAdapters:
    settings: Settings
    store: S3RawMessageStore
    mailboxes: DynamoMailboxRepository
    directory: CognitoAccountDirectory
    domains: HostedDomains
    outgoing: SqsDeliveryQueue | None


@cache
def aws_adapters() -> AwsAdapters:
    settings = Settings.from_environ(os.environ)
    return AwsAdapters(
        settings=settings,
        store=S3RawMessageStore(s3_client(), settings.bucket),
        mailboxes=DynamoMailboxRepository(dynamodb_client(), settings.table),
        directory=CognitoAccountDirectory(
            cognito_client(), settings.user_pool_id, settings.user_pool_client_id
        ),
        domains=HostedDomains.of(settings.domains),
        outgoing=SqsDeliveryQueue(sqs_client(), settings.outgoing_queue_url, dynamodb_client(),
                                  settings.table) if settings.outgoing_queue_url else None,
    )


@dataclass(frozen=True)
class DeliveryAdapters:
    hops: NextHopResolver
    ledger: DynamoDeliveryLedger
    policy: RetryPolicy
    credentials: tuple[str, str] | None
    require_tls: bool

    def new_pool(self, hostname: str) -> SmtpClientPool:
        """Connections live for one invocation: a batch shares them per next hop."""
        return SmtpClientPool(hostname, require_tls=self.require_tls,
                              credentials=self.credentials)


@cache
def delivery_adapters() -> DeliveryAdapters:
    settings = aws_adapters().settings
    policy = RetryPolicy()
    if settings.retry_schedule:
        policy = RetryPolicy.parse(settings.retry_schedule, settings.give_up_after or "5d")
    overrides = parse_overrides(settings.mx_overrides)
    if settings.delivery_mode == "direct":
        return DeliveryAdapters(DnsNextHopResolver(overrides=overrides),
                                DynamoDeliveryLedger(dynamodb_client(), settings.table),
                                policy, None, require_tls=False)
    if settings.delivery_mode != "relay" or not settings.relay_host:
        raise ConfigurationError("relay delivery needs MAILPIPE_RELAY_HOST")
    credentials = None
    if settings.relay_secret_arn:
        secret = json.loads(secrets_client().get_secret_value(
            SecretId=settings.relay_secret_arn)["SecretString"])
        credentials = (str(secret["username"]), str(secret["password"]))
    return DeliveryAdapters(RelayNextHop(parse_hop(settings.relay_host, 587)),
                            DynamoDeliveryLedger(dynamodb_client(), settings.table),
                            policy, credentials, require_tls=True)
