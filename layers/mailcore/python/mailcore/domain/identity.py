"""Whom a message says it is from, and whether the account sending it may say so.

One rule for every way an account sends (the submission port, the API's draft send):
the header section is well formed, with exactly one From naming only the account, and a
Sender, Resent-From or Resent-Sender, if any, naming the account too. Python's parser
forgives what other clients read differently (`From :`, `From<TAB>:`, a Unix `From `
line, a second From after a malformed line, a display name that looks like an address),
so the raw lines are judged first.
"""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesHeaderParser

from mailcore.errors import PermanentFailure

# A field starts with its name (printable ASCII but the colon, no space) and a colon, or
# continues the one before with white space (RFC 5322 §2.2, §3.6.8).
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:|[ \t]")
# At most this much header is read; a longer section is refused.
MAX_HEADER_SECTION = 256 * 1024
MAX_AUTHOR_FIELD = 2048  # one mailbox with a display name fits in far less


class IdentityRefused(PermanentFailure):
    """A message the account may not send as it is. `public` says why, generically."""


class MalformedHeaderSection(IdentityRefused):
    public = "malformed header section"


class OneFromRequired(IdentityRefused):
    public = "a message needs exactly one From header field"


class NotYourIdentity(IdentityRefused):
    public = "From and Sender must name only your own address"


def header_section(message: bytes) -> bytes | None:
    """The header lines before the first empty line, CRLF-ended, or None when the section
    is longer than MAX_HEADER_SECTION."""
    end = message.find(b"\r\n\r\n", 0, MAX_HEADER_SECTION)
    if end >= 0:
        return message[:end]
    if len(message) > MAX_HEADER_SECTION:
        return None
    return message.removesuffix(b"\r\n")


def identity_problem(message: bytes, account: str) -> IdentityRefused | None:
    """None when `account` may send `message` as it is; otherwise the refusal (not
    raised: the SMTP edge answers it, the API raises it)."""
    block = header_section(message)
    if block is None or any(not _HEADER_LINE.match(line) for line in block.split(b"\r\n")
                            if line):
        return MalformedHeaderSection()
    if b"\r" in block.replace(b"\r\n", b"") or b"\n" in block.replace(b"\r\n", b""):
        return MalformedHeaderSection()  # a bare CR or LF: a line other readers split
    headers = BytesHeaderParser(policy=policy.default).parsebytes(block + b"\r\n\r\n")
    if headers.defects:
        return MalformedHeaderSection()
    fields = list(headers.raw_items())
    authors = [value for name, value in fields if name.lower() == "from"]
    if len(authors) != 1:
        return OneFromRequired()
    senders = [value for name, value in fields if name.lower() == "sender"]
    if len(senders) > 1:
        return MalformedHeaderSection()  # RFC 5322 §3.6: at most one Sender
    # Resent-From and Resent-Sender (RFC 5322 3.6.6) say who resent the message, and
    # readers show them as such; From must be the account's, so a resend by anyone else
    # is never this account's to claim.
    resent = [(name, value) for name, value in fields
              if name.lower() in ("resent-from", "resent-sender")]
    for name, value in [("From", authors[0]), *(("Sender", sender) for sender in senders),
                        *resent]:
        if not _names_only(name, value, account):
            return NotYourIdentity()
    return None


def check_identity(message: bytes, account: str) -> None:
    """identity_problem, raised."""
    problem = identity_problem(message, account)
    if problem is not None:
        raise problem


def _names_only(name: str, value: str, account: str) -> bool:
    if len(value) > MAX_AUTHOR_FIELD:
        return False
    try:
        parsed = policy.default.header_factory(name, value)
        addresses = [str(address.addr_spec).lower() for address in parsed.addresses]
    except (ValueError, TypeError, AttributeError, IndexError, RecursionError):
        return False  # nested comments recurse in the parser
    return (not parsed.defects and bool(addresses)
            and all(address == account.lower() for address in addresses))
