"""Suppression lists: what our own deliveries put there, what sending refuses because of
them, and what a person sees and changes (the API, `mailpipe suppression`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mailcore.domain.address import parse_address, try_parse_address
from mailcore.domain.next_hop import RecipientReply
from mailcore.domain.suppression import Suppression, notice, printable, reason_of, suppresses
from mailcore.errors import InvalidRequest, NotSuppressed, RecipientSuppressed, TransientFailure
from mailcore.observability import logger
from mailcore.services.recipients import HostedDomains, hosted_candidate

if TYPE_CHECKING:
    from mailcore.ports import Suppressions


def sending_domain(mail_from: str) -> str | None:
    address = try_parse_address(mail_from)
    return address.domain if address else None


def record_permanent_failures(mail_from: str, replies: Iterable[RecipientReply], now: datetime,
                              suppressions: Suppressions) -> list[str]:
    """Put each recipient a remote server refused for good (5.1.x) on the sending domain's
    list; the addresses added. A failure to add is logged: the delivery itself is done."""
    domain = sending_domain(mail_from)
    if domain is None:  # a DSN (null reverse-path) is sent for no domain
        return []
    added = []
    for reply in replies:
        if not suppresses(reply):
            continue
        try:
            suppressions.add(domain, Suppression(reply.recipient, reason_of(reply), now))
        except TransientFailure:
            logger.warning("suppression not recorded", domain=domain, exc_info=True)
            continue
        added.append(reply.recipient)
    if added:
        logger.info("recipients suppressed", domain=domain, count=len(added))
    return added


def check_not_suppressed(account: str, recipients: Sequence[str], domains: HostedDomains,
                         suppressions: Suppressions) -> None:
    """RecipientSuppressed, saying why, for the first remote recipient on the list of the
    account's domain. Hosted recipients are never on it: our own mail never bounces."""
    remote = [each for each in recipients if hosted_candidate(each, domains) is None]
    domain = sending_domain(account)
    if not remote or domain is None:
        return
    found = suppressions.entries(domain, remote)
    for recipient in remote:
        if recipient in found:
            raise RecipientSuppressed(notice(domain, found[recipient]), "to")


def list_of(account: str, suppressions: Suppressions) -> tuple[str, list[Suppression]]:
    """The account's domain and its list, oldest first."""
    domain = parse_address(account).domain
    entries = sorted(suppressions.entries(domain).values(),
                     key=lambda entry: (entry.since, entry.address))
    return domain, entries


def remove_from_list(account: str, address: str, suppressions: Suppressions) -> None:
    domain = parse_address(account).domain
    if not suppressions.remove(domain, address):
        raise NotSuppressed(f"{address} is not on {domain}'s suppression list")


def add_by_hand(account: str, address: str, note: str | None,
                suppressions: Suppressions) -> Suppression:
    """A person's entry: `note`, or who added it, is its reason."""
    parsed = try_parse_address(address)
    if parsed is None:
        raise InvalidRequest(f"not a plain address: {printable(address)}", "address")
    entry = Suppression(str(parsed), printable(note or f"added by {account}"),
                        datetime.now(UTC))
    suppressions.add(parse_address(account).domain, entry)
    return entry
