"""The deliver function's composition root, apart from wiring.py so that the other
functions' cold starts do not import dnspython and the SMTP client."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from mailcore.adapters.aws.clients import dynamodb_client, secrets_client
from mailcore.adapters.aws.dynamodb_ledger import DynamoDeliveryLedger
from mailcore.adapters.dns_next_hop import (
    DnsNextHopResolver,
    RelayNextHop,
    parse_hop,
    parse_overrides,
)
from mailcore.adapters.dns_resolver import DnsServer, sync_resolver
from mailcore.adapters.smtp_client import AddressLookup, SmtpClientPool
from mailcore.config import ConfigurationError, Settings
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
    addresses: AddressLookup | None = None  # a DNS-found next hop's, from the same server

    def new_pool(self, hostname: str) -> SmtpClientPool:
        """Connections live for one invocation: a batch shares them per next hop."""
        return SmtpClientPool(hostname, require_tls=self.require_tls,
                              credentials=self.credentials, addresses=self.addresses)


# A delivery attempt can wait for DNS longer than the edge can (no client is waiting).
MX_LOOKUP_SECONDS = 10.0


def direct_next_hops(settings: Settings) -> DnsNextHopResolver:
    """MX hosts and their addresses, both asked of the stack's DNS server (MAILPIPE_DNS);
    the --mx overrides bypass DNS."""
    try:
        server = DnsServer.parse(settings.dns_server)
    except ValueError as exc:
        raise ConfigurationError(f"MAILPIPE_DNS: {exc}") from exc
    return DnsNextHopResolver(sync_resolver(server, MX_LOOKUP_SECONDS),
                              overrides=parse_overrides(settings.mx_overrides))


@cache
def delivery_adapters() -> DeliveryAdapters:
    settings = aws_adapters().settings
    policy = RetryPolicy()
    if settings.retry_schedule:
        policy = RetryPolicy.parse(settings.retry_schedule, settings.give_up_after or "5d")
    if settings.delivery_mode == "direct":
        hops = direct_next_hops(settings)
        return DeliveryAdapters(hops, DynamoDeliveryLedger(dynamodb_client(), settings.table),
                                policy, None, require_tls=False, addresses=hops.addresses)
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
