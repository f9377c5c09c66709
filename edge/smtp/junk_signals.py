"""What the MX edge finds that junks a message whatever the account's history (issue 29,
item 4): the GTUBE string in its bytes, and the DNS blocklists that list the connecting
address. They go into the envelope (`Envelope.signals`); nothing is refused for them, the
filing puts the message in Junk (item 5: nothing refused for content alone).

The blocklists are asked at the session's first MAIL FROM (scanners that never send cost
no query), in parallel with the rest of the conversation, through the edge's one resolver,
and awaited at the end of DATA for what remains of their budget."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterable
from typing import Any
from weakref import WeakKeyDictionary

from aws_lambda_powertools import Logger

from mailcore.adapters.dns_resolver import LOOKUP_SECONDS
from mailcore.authentication.dkim_verify import OffLoop
from mailcore.authentication.dns import AsyncDns, DnsFailure
from mailcore.domain.junk import GTUBE, JunkSignals

logger = Logger(child=True)

DNSBL_VARIABLE = "MAILPIPE_DNSBL"  # zones, comma-separated (template parameter DnsblZones)
# RFC 5782 §2.1: an address is listed when its name has an A record, by convention in
# 127.0.0.0/8 (anything else is a broken or hijacked zone, not a listing).
LISTED = ipaddress.ip_network("127.0.0.0/8")
# Spamhaus answers 127.255.255.252-255 when it refuses the query (a typing error in the
# zone, a public or open resolver, too many queries): the query was not answered, and
# the address is not listed for it.
REFUSED = ipaddress.ip_network("127.255.255.0/24")


def zones_of(text: str | None) -> tuple[str, ...]:
    """"zen.spamhaus.org, bl.example" -> each zone once, lower case, in the given order."""
    zones = (zone.strip().rstrip(".").lower() for zone in (text or "").split(","))
    return tuple(dict.fromkeys(zone for zone in zones if zone))


def query_name(address: str, zone: str) -> str | None:
    """The name to ask `zone` about `address` (RFC 5782 §2.1 for IPv4, §2.4 for IPv6: the
    octets, or the 32 nibbles, reversed); None for what is not an IP address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # an IPv4 client on a dual-stack socket
    if isinstance(ip, ipaddress.IPv4Address):
        labels = reversed(str(ip).split("."))
    else:
        labels = reversed(ip.exploded.replace(":", ""))
    return ".".join(labels) + "." + zone


def has_gtube(raw: bytes) -> bool:
    return GTUBE in raw  # a memchr-speed search; still linear in the message: off the loop


class Blocklists:
    """The zones, asked through the edge's resolver. One per process: a zone that refuses
    our queries is said once (a warning naming it and its code), not once per message."""

    def __init__(self, dns: AsyncDns, zones: Iterable[str]) -> None:
        self._dns = dns
        self.zones = tuple(zones)
        self._refusing: set[str] = set()

    async def listing(self, address: str) -> tuple[str, ...]:
        """The zones that list `address`; a zone that does not answer lists nothing."""
        listed = await asyncio.gather(*(self._lists(zone, address) for zone in self.zones))
        zones = tuple(zone for zone, lists in zip(self.zones, listed, strict=True) if lists)
        if zones:
            logger.info("client blocklisted", peer=address, zones=list(zones))
        return zones

    async def _lists(self, zone: str, address: str) -> bool:
        name = query_name(address, zone)
        if name is None:
            return False
        try:
            answers = await self._dns.a(name)
        except DnsFailure as exc:
            logger.warning("blocklist not answered", zone=zone, peer=address, reason=str(exc))
            return False
        listed = False
        for answer in answers:
            try:
                code = ipaddress.ip_address(answer)
            except ValueError:
                continue
            if code in REFUSED:
                self._refused(zone, answer)
            elif code in LISTED:
                listed = True
        return listed

    def _refused(self, zone: str, code: str) -> None:
        if zone not in self._refusing:
            self._refusing.add(zone)
            logger.warning("blocklist refuses our queries: its answers are not listings",
                           zone=zone, code=code)


class EdgeSignals:
    """One per MX listener: each connection's blocklist lookups (begun at its first MAIL
    FROM, kept for its next transactions) and the signals of each message."""

    def __init__(self, blocklists: Blocklists | None = None,
                 budget: float = LOOKUP_SECONDS) -> None:
        self._blocklists = blocklists if blocklists is not None and blocklists.zones else None
        self._budget = budget
        self._lookups: WeakKeyDictionary[Any, tuple[float, asyncio.Task[tuple[str, ...]]]] = (
            WeakKeyDictionary())
        self._running: set[asyncio.Task[tuple[str, ...]]] = set()  # kept until done

    @property
    def zones(self) -> tuple[str, ...]:
        return () if self._blocklists is None else self._blocklists.zones

    def begin(self, connection: Any, address: str) -> None:
        """Start asking the blocklists about `address`, once per connection."""
        if self._blocklists is None or connection in self._lookups:
            return
        task = asyncio.get_running_loop().create_task(self._blocklists.listing(address))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        self._lookups[connection] = (time.monotonic() + self._budget, task)

    async def of(self, connection: Any, address: str, raw: bytes,
                 off_loop: OffLoop) -> JunkSignals:
        self.begin(connection, address)  # a no-op after MAIL FROM: they run already
        gtube = await off_loop(has_gtube, raw)
        return JunkSignals(gtube=bool(gtube), dnsbl=await self._listing(connection, address))

    async def _listing(self, connection: Any, address: str) -> tuple[str, ...]:
        if connection not in self._lookups:
            return ()
        deadline, task = self._lookups[connection]
        try:
            return await asyncio.wait_for(asyncio.shield(task),
                                          max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            logger.warning("blocklists unanswered within the budget", peer=address,
                           budget=self._budget)
        except Exception:
            # A fault of ours loses no mail: the message is taken without the signal.
            logger.exception("blocklist lookup failed", peer=address)
        return ()
