"""Suppression: an address a sending domain stops sending to, after a remote server said
the recipient itself is permanently wrong (RFC 3463 class 5, subject 1: addressing)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from mailcore.domain.next_hop import RecipientReply

# "5.1.1 No such user", "5.1.10 Null MX"... the enhanced status code opening the reply text.
_ADDRESSING_FAILURE = re.compile(r"^5\.1\.\d{1,3}(\s|$)")
MAX_REASON = 200  # of the remote reply, quoted in our own one-line SMTP replies (512 bytes)


@dataclass(frozen=True)
class Suppression:
    address: str
    reason: str  # the remote server's reply that put the address here, or a person's note
    since: datetime


def suppresses(reply: RecipientReply) -> bool:
    """A permanent failure of the recipient's address, said by a remote server in our own
    SMTP conversation. A reply without a remote MTA is ours (no next hop, say), and a DSN
    arriving from outside never comes here: anyone can forge one."""
    return (reply.remote_mta is not None and 500 <= reply.code < 600
            and _ADDRESSING_FAILURE.match(reply.text) is not None)


def reason_of(reply: RecipientReply) -> str:
    return printable(f"{reply.code} {reply.text}")


def printable(text: str) -> str:
    """One line of printable ASCII, short enough to quote in an SMTP reply."""
    line = " ".join("".join(char if " " <= char <= "~" else " " for char in text).split())
    return line[:MAX_REASON]


def notice(domain: str, entry: Suppression) -> str:
    """Why mail to the address is refused, and how to take it off the list."""
    return (f"<{entry.address}>: on {domain}'s suppression list since "
            f"{entry.since:%Y-%m-%d} after \"{printable(entry.reason)}\"; remove it with "
            "mailpipe suppression remove or the API")


def suppression_key(address: str) -> str:
    """Addresses are kept as parse_address canonicalises them (lower case)."""
    return address.strip().lower()
