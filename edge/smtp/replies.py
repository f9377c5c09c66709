"""Every SMTP reply the edge composes itself, with its enhanced status code (RFC 3463),
and the enhanced codes given to aiosmtpd's own replies, which have none."""

from __future__ import annotations

import re

from mailcore.domain.identity import (
    IdentityRefused,
    MalformedHeaderSection,
    NotYourIdentity,
    OneFromRequired,
)
from mailcore.domain.suppression import Suppression, notice

SENDER_OK = "250 2.1.0 Sender ok"
RECIPIENT_OK = "250 2.1.5 Recipient ok"
NO_SUCH_ACCOUNT = "550 5.1.1 No such user here"
RELAY_DENIED = "550 5.7.1 Relaying denied"
BAD_RECIPIENT = "553 5.1.3 Recipient address not accepted"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
LOOKUP_UNAVAILABLE = "451 4.3.0 Recipient lookup unavailable, try again later"
STORAGE_UNAVAILABLE = "451 4.3.0 Storage unavailable, try again later"
TEMPORARY_ERROR = "451 4.3.0 Temporary error, try again later"
BARE_LINE_ENDING = "550 5.6.0 Bare CR or LF in message; lines must end with CRLF"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections, try again later"
TOO_MANY_FROM_CLIENT = "421 4.7.0 Too many connections from your address, try again later"
TOO_MANY_ERRORS = "421 4.7.0 Too many errors, closing connection"
TIMEOUT = "421 4.4.2 Timeout, closing connection"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"
AUTH_THROTTLED = "454 4.7.0 Too many failed authentication attempts, try again later"
AUTH_UNAVAILABLE = "454 4.7.0 Temporary authentication failure"
AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"
AUTH_SUCCEEDED = "235 2.7.0 Authentication successful"
NOT_YOUR_ADDRESS = "553 5.7.1 Sender address is not yours"
FROM_NOT_YOURS = "553 5.7.1 From header must name only your own address"
ONE_FROM_REQUIRED = "550 5.6.0 A message needs exactly one From header field"
MALFORMED_HEADER = "550 5.6.0 Malformed header section"
SENDING_LIMIT = "450 4.7.1 Sending limit reached, try again later"
INSUFFICIENT_STORAGE = "452 4.3.1 Insufficient system storage, try again later"
TOO_MUCH_DATA = "552 5.3.4 Message too big"
LINE_TOO_LONG = "500 5.5.2 Line too long"
SESSION_TOO_OLD = "421 4.4.2 Session too long, closing connection"
PROXY_REFUSED = "554 5.7.0 PROXY header not accepted from your address"
# RFC 7372 §3.2: the From domain's DMARC policy (or ours, for a From in our domains) says reject.
DMARC_REFUSED = ("550 5.7.26 Message refused: it is not authenticated for its From domain"
                 " (DMARC policy reject)")
SUPPRESSED = "550 5.1.1"  # and why: suppressed_recipient()

# RFC 2034 §3: every reply carries an enhanced code, except the greeting, the EHLO
# lines and the intermediate 334/354 replies.
_DEFAULT_ENHANCED = {
    "211": "2.0.0", "214": "2.0.0", "220": "2.0.0", "221": "2.0.0", "235": "2.7.0",
    "250": "2.0.0", "251": "2.1.5", "252": "2.0.0",
    "421": "4.3.0", "450": "4.2.0", "451": "4.3.0", "452": "4.3.1", "454": "4.7.0",
    "500": "5.5.2", "501": "5.5.4", "502": "5.5.1", "503": "5.5.1", "504": "5.5.4",
    "530": "5.7.0", "535": "5.7.8", "538": "5.7.11", "550": "5.0.0", "551": "5.1.6",
    "552": "5.3.4", "553": "5.1.3", "554": "5.0.0", "555": "5.5.4",
}
_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}( |$)")


def with_enhanced_code(reply: str) -> str:
    if len(reply) < 3 or _HAS_ENHANCED.match(reply):
        return reply
    enhanced = _DEFAULT_ENHANCED.get(reply[:3])
    if enhanced is None:
        return reply
    separator = reply[3:4] or " "
    return f"{reply[:3]}{separator}{enhanced} {reply[4:]}".rstrip()


def identity_refusal(problem: IdentityRefused) -> str:
    """The reply for a message whose sender identity the account may not use."""
    if isinstance(problem, OneFromRequired):
        return ONE_FROM_REQUIRED
    if isinstance(problem, MalformedHeaderSection):
        return MALFORMED_HEADER
    if isinstance(problem, NotYourIdentity):
        return FROM_NOT_YOURS
    return MALFORMED_HEADER


def suppressed_recipient(domain: str, entry: Suppression) -> str:
    """A recipient on the sending domain's suppression list: since when, after what reply,
    and how to take it off."""
    return f"{SUPPRESSED} {notice(domain, entry)}"[:510]  # RFC 5321 4.5.3.1.5: 512 with CRLF


def queued_as(message_id: str) -> str:
    return f"250 2.0.0 Ok: queued as {message_id}"
