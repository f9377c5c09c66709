"""Signing what an account sends, once, when it is accepted for sending: the submission
port and the API put these fields above the message before it is stored, so the Sent
copy, a hosted recipient's copy and every delivery attempt carry the same signed bytes."""

from __future__ import annotations

import email.utils

from mailcore.authentication.results_header import remove_our_results
from mailcore.authentication.signing import (
    UnsignableMessage,
    dkim_signatures,
    submitted_results_header,
)
from mailcore.domain.compose import message_id_header
from mailcore.domain.ids import new_message_id
from mailcore.observability import logger
from mailcore.parsing.header_lines import fields_named
from mailcore.parsing.limits import PARSE_LIMITS
from mailcore.ports import SigningKeys

_DATE_AND_ID = frozenset({"date", "message-id"})


def sender_fields(message: bytes, account: str, keys: SigningKeys, authserv_id: str
                  ) -> tuple[bytes, bytes]:
    """(fields, message): the Authentication-Results field saying `account` authenticated,
    then the message's DKIM-Signature fields for the From domain (the account's own, as the
    identity rules, mailcore.domain.identity, made From the account's address); and the
    message without Authentication-Results fields that claim to be ours (RFC 8601 §5: only
    we write those), with a Date and a Message-ID if it had none (`completed`), which is
    what the signatures cover. A domain without keys, or a message dkimpy cannot read, is
    sent unsigned, with a warning."""
    message = completed(remove_our_results(message, authserv_id), account)
    domain = account.rpartition("@")[2].lower()
    results = submitted_results_header(authserv_id, account)
    found = keys.for_domain(domain)
    if not found:
        logger.warning("no DKIM keys for the domain: sent unsigned", domain=domain)
        return results, message
    try:
        return results + dkim_signatures(message, found), message
    except UnsignableMessage as exc:
        logger.warning("message not signable: sent unsigned", domain=domain, reason=str(exc))
        return results, message


def completed(message: bytes, account: str) -> bytes:
    """The message with the Date and Message-ID fields RFC 5322 requires (§3.6), added when
    it was submitted without them, as a submission server may (RFC 6409 §8.2, §8.3):
    receivers refuse or junk mail without a Date, and OpenDKIM calls one a syntax error."""
    present = {name for name, _ in fields_named(message, _DATE_AND_ID, PARSE_LIMITS)}
    added = b""
    if "date" not in present:
        added += f"Date: {email.utils.formatdate(localtime=False)}\r\n".encode()
    if "message-id" not in present:
        added += f"Message-ID: {message_id_header(new_message_id(), account)}\r\n".encode()
    return added + message
