"""Who a message says it is from, and what of that it proved (issue 29).

Claimed: the first From address and its domain, as the reader sees them; the block list
matches these (blocking a forged sender is what the user wants). Proven: what
verification vouched for, the only identities the allow list and the account's history
are keyed on, so that a forged From cannot borrow a correspondent's trust:
- DMARC passed for the From domain: the address and the domain (the domain's owner
  vouched for the whole From);
- otherwise a DKIM or SPF pass aligned with the From domain (relaxed, RFC 7489 3.1): the
  domain only (the domain sent it; which of its users did, it did not say);
- submitted mail (envelope.submitted_by): the authenticated account's address and domain;
- no verdict (verification off, or mail accepted before it existed): nothing.
"""

from __future__ import annotations

from mailcore.authentication.dmarc import aligned
from mailcore.domain.envelope import Envelope
from mailcore.domain.verdict import Result
from mailcore.imap_view.addresses import addresses
from mailcore.imap_view.search_text import read_head

# A From field longer than this is not read further: an address is at most 254 octets
# (RFC 5321 4.5.3.1.3), and the display name before it is rarely more than a line.
MAX_FROM_FIELD = 4096
MAX_ADDRESS = 254
_HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def from_address(raw: bytes) -> str | None:
    """The first address of the first From field, in lower case; None without one."""
    headers, _ = read_head(raw)
    value = next((value for name, value in headers if name == b"from"), None)
    if value is None:
        return None
    for address in addresses(value[:MAX_FROM_FIELD]):
        if not address.mailbox or not address.host:
            continue
        local = address.mailbox.decode("utf-8", "replace").lower()
        domain = _domain(address.host.decode("utf-8", "replace"))
        if (domain is None or not local.isprintable() or " " in local
                or len(local) + len(domain) + 1 > MAX_ADDRESS):
            return None
        return f"{local}@{domain}"
    return None


def _domain(written: str) -> str | None:
    """A domain as verification names it: lower case, no final dot, A-labels."""
    domain = written.strip().lower().rstrip(".")
    if not domain:
        return None
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if not set(domain) <= _HOST_CHARACTERS or "" in domain.split("."):
        return None  # not a host name: no verdict or list names it
    return domain


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def claimed_identities(address: str | None) -> tuple[str, ...]:
    """The From address and its domain, as claimed."""
    if not address:
        return ()
    return (address, domain_of(address)) if "@" in address else (address,)


def proven_identities(envelope: Envelope, address: str | None) -> tuple[str, ...]:
    """The identities of `address` (the From address) that the message proved, address
    first (the module's text says which)."""
    if envelope.submitted_by:
        account = envelope.submitted_by.lower()
        return claimed_identities(account)
    verdict = envelope.verdict
    if verdict is None or not address or "@" not in address:
        return ()
    domain = domain_of(address)
    dmarc = verdict.dmarc
    if dmarc is not None and dmarc.result is Result.PASS and dmarc.from_domain.lower() == domain:
        return (address, domain)
    signed = any(signature.result is Result.PASS and aligned(domain, signature.domain, False)
                 for signature in verdict.dkim)
    spf = verdict.spf.result is Result.PASS and aligned(domain, verdict.spf.domain, False)
    return (domain,) if signed or spf else ()
