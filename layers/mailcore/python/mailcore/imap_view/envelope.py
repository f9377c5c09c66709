"""ENVELOPE (RFC 3501 7.4.2): the fields as they stand in the header, addresses listed."""

from __future__ import annotations

from dataclasses import dataclass

from mailcore.imap_view.addresses import Address, addresses
from mailcore.imap_view.parts import Part
from mailcore.imap_view.strings import NIL, human_nstring, nstring

# Address fields of 2,000 recipients fit in 64 KiB; and one answer reads at most
# ADDRESS_BUDGET octets of addresses (each costs Python steps: 1.3 us an octet for 8 MiB of
# "a@b ", measured).
MAX_ADDRESS_FIELD = 64 * 1024
ADDRESS_BUDGET = 512 * 1024


@dataclass(frozen=True)
class Envelope:
    """RFC 3501's ENVELOPE of a message, parsed: strings as they stand in the header."""

    date: bytes | None
    subject: bytes | None
    from_: list[Address]
    sender: list[Address]
    reply_to: list[Address]
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    in_reply_to: bytes | None
    message_id: bytes | None

    def __bytes__(self) -> bytes:
        def listed(found: list[Address]) -> bytes:
            return b"(" + b"".join(bytes(address) for address in found) + b")" if found else NIL

        return b"(" + b" ".join([
            nstring(self.date), human_nstring(self.subject), listed(self.from_),
            listed(self.sender), listed(self.reply_to), listed(self.to), listed(self.cc),
            listed(self.bcc), nstring(self.in_reply_to), nstring(self.message_id)]) + b")"


def read_envelope(part: Part, budget: list[int] | None = None) -> Envelope:
    """`budget`: octets of address fields left to read for this answer (ADDRESS_BUDGET);
    an address field is read from its first MAX_ADDRESS_FIELD octets."""
    budget = budget if budget is not None else [ADDRESS_BUDGET]

    def listed(name: bytes) -> list[Address]:
        value = part.header(name)
        if value is None:
            return []
        allowed = min(len(value), MAX_ADDRESS_FIELD, budget[0])
        budget[0] -= allowed
        return addresses(value[:allowed]) if allowed else []

    from_ = listed(b"from")
    sender = listed(b"sender") if part.header(b"sender") is not None else from_
    reply_to = listed(b"reply-to") if part.header(b"reply-to") is not None else from_
    return Envelope(part.header(b"date"), part.header(b"subject"), from_, sender, reply_to,
                    listed(b"to"), listed(b"cc"), listed(b"bcc"), part.header(b"in-reply-to"),
                    part.header(b"message-id"))


def envelope(part: Part, budget: list[int] | None = None) -> bytes:
    return bytes(read_envelope(part, budget))
