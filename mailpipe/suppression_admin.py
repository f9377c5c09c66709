"""`mailpipe suppression`: each hosted domain's suppression list (the addresses it stops
sending to after a remote server refused them for good), and taking an address off."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC
from typing import Any

from mailcore.adapters.aws.dynamodb_suppressions import DynamoSuppressions
from mailcore.domain.address import try_parse_address
from mailcore.services.recipients import HostedDomains


class SuppressionCommandFailed(Exception):
    """Said in one line on stderr; the command ends with status 1."""


def add_parser(commands: Any, add_stack_options: Callable[[argparse.ArgumentParser], None],
               domain: Callable[[str], str]) -> None:
    suppression = commands.add_parser(
        "suppression", help="addresses each domain stops sending to: list, remove")
    actions = suppression.add_subparsers(dest="suppression_command", required=True)
    listing = actions.add_parser("list", help="one line per address: domain, address, "
                                 "since, the reply that put it there")
    listing.add_argument("domain", nargs="?", type=domain,
                         help="one hosted domain's list (default: every hosted domain's)")
    add_stack_options(listing)
    remove = actions.add_parser("remove", help="send to an address again")
    remove.add_argument("address")
    remove.add_argument("--domain", type=domain,
                        help="from this domain's list only (default: every hosted domain's)")
    add_stack_options(remove)


def run(arguments: argparse.Namespace, outputs: dict[str, str], client: Any) -> list[str]:
    """The lines to print; SuppressionCommandFailed for a line to say on stderr."""
    lists = DynamoSuppressions(client("dynamodb"), outputs["MailboxTableName"])
    hosted = HostedDomains.of(outputs.get("HostedDomains", "").split(","))
    domains = sorted(hosted.names)
    if arguments.domain:
        if not hosted.hosts(arguments.domain):
            raise SuppressionCommandFailed(f"{arguments.domain} is not a hosted domain here "
                                           f"({', '.join(domains)})")
        domains = [arguments.domain]
    if arguments.suppression_command == "list":
        return [f"{domain} {entry.address} {entry.since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} "
                f"{entry.reason}"
                for domain in domains for entry in sorted(
                    lists.entries(domain).values(), key=lambda each: (each.since, each.address))]
    address = try_parse_address(arguments.address)
    if address is None:
        raise SuppressionCommandFailed(f"not a plain address: {arguments.address!r}")
    removed = [domain for domain in domains if lists.remove(domain, str(address))]
    if not removed:
        raise SuppressionCommandFailed(f"{address} is on no suppression list "
                                       f"({', '.join(domains)})")
    return [f"{address} removed from {domain}'s suppression list" for domain in removed]
