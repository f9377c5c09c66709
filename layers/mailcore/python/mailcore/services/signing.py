"""Signing what an account sends, once, when it is accepted for sending: the submission
port and the API put these fields above the message before it is stored, so the Sent
copy, a hosted recipient's copy and every delivery attempt carry the same signed bytes."""

from __future__ import annotations

from mailcore.authentication.results_header import remove_our_results
from mailcore.authentication.signing import (
    UnsignableMessage,
    dkim_signatures,
    submitted_results_header,
)
from mailcore.observability import logger
from mailcore.ports import SigningKeys


def sender_fields(message: bytes, account: str, keys: SigningKeys, authserv_id: str
                  ) -> tuple[bytes, bytes]:
    """(fields, message): the Authentication-Results field saying `account` authenticated,
    then the message's DKIM-Signature fields for the From domain (the account's own, as the
    identity rules, mailcore.domain.identity, made From the account's address); and the
    message without Authentication-Results fields that claim to be ours (RFC 8601 §5: only
    we write those), which is what the signatures cover. A domain without keys, or a
    message dkimpy cannot read, is sent unsigned, with a warning."""
    message = remove_our_results(message, authserv_id)
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
