"""The deliver function's composition root, apart from wiring.py so that the other
functions' cold starts do not import dnspython and the SMTP client."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from mailcore.adapters.aws.clients import dynamodb_client, secrets_client
from mailcore.adapters.aws.dynamodb_ledger import DynamoDeliveryLedger
from mailcore.adapters.aws.dynamodb_suppressions import DynamoSuppressions
from mailcore.adapters.dns_next_hop import (
    DnsNextHopResolver,
    RelayNextHop,
    parse_hop,
    parse_overrides,
)
from mailcore.adapters.smtp_client import SmtpClientPool
from mailcore.config import ConfigurationError
from mailcore.domain.retry import RetryPolicy
from mailcore.wiring import aws_adapters

if TYPE_CHECKING:
    from mailcore.ports import NextHopResolver


@dataclass(frozen=True)
class DeliveryAdapters:
    hops: NextHopResolver
    ledger: DynamoDeliveryLedger
    policy: RetryPolicy
    credentials: tuple[str, str] | None
    require_tls: bool
    # Where our own deliveries' permanent 5.1.x refusals go (services.suppression).
    suppressions: DynamoSuppressions

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
                                policy, None, require_tls=False,
                                suppressions=DynamoSuppressions(dynamodb_client(), settings.table))
    if settings.delivery_mode != "relay" or not settings.relay_host:
        raise ConfigurationError("relay delivery needs MAILPIPE_RELAY_HOST")
    credentials = None
    if settings.relay_secret_arn:
        secret = json.loads(secrets_client().get_secret_value(
            SecretId=settings.relay_secret_arn)["SecretString"])
        credentials = (str(secret["username"]), str(secret["password"]))
    return DeliveryAdapters(RelayNextHop(parse_hop(settings.relay_host, 587)),
                            DynamoDeliveryLedger(dynamodb_client(), settings.table),
                            policy, credentials, require_tls=True,
                            suppressions=DynamoSuppressions(dynamodb_client(), settings.table))
