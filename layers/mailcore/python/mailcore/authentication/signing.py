"""What goes above a message one of our accounts sends: one Authentication-Results field
(RFC 8601) saying the sender authenticated, and its DKIM-Signature fields (RFC 6376), one
rsa-sha256 and one ed25519-sha256 (RFC 8463) per message."""

from __future__ import annotations

from collections.abc import Sequence

from mailcore.authentication.signing_keys import SigningKey

# relaxed/relaxed: the signatures survive the re-folding and trailing-space changes
# relays make (RFC 6376 §3.4); simple would break on the first one that touches a header.
CANONICALIZATION = (b"relaxed", b"relaxed")


class UnsignableMessage(ValueError):
    """dkimpy cannot read the message's header section."""


def dkim_signatures(message: bytes, keys: Sequence[SigningKey]) -> bytes:
    """The DKIM-Signature fields to put above `message`, one per key in the order given,
    each ending in CRLF; b"" without keys. h= names the fields RFC 6376 §5.4.1 recommends
    signing that the message has, and From once more than it has (oversigned: a From added
    on the way breaks the signatures instead of being shown)."""
    if not keys:
        return b""
    # Imported when first needed: dkimpy brings dnspython's resolver with it (0.23-0.28 s
    # of imports here), which a cold start of a function that does not sign never pays.
    import dkim

    try:
        # One parse for both signatures; each hashes the body in its own way.
        signer = dkim.DKIM(message, linesep=b"\r\n")
        return b"".join(
            signer.sign(key.selector.encode(), key.domain.encode(), key.private_key.encode(),
                        signature_algorithm=key.algorithm.encode(),
                        canonicalize=CANONICALIZATION)
            for key in keys)
    except dkim.MessageFormatError as exc:
        raise UnsignableMessage(str(exc)) from exc


def submitted_results_header(authserv_id: str, account: str) -> bytes:
    """`Authentication-Results: <authserv_id>; auth=pass smtp.auth=<account>` and CRLF:
    the sender logged in as `account` (RFC 8601 §2.7.4), said once by whoever accepted
    the message, so every stored message carries one such field."""
    import authres

    header = authres.AuthenticationResultsHeader(
        authserv_id=authserv_id,
        results=[authres.SMTPAUTHAuthenticationResult(result="pass", smtp_auth=account)])
    return str(header).encode("ascii", "replace") + b"\r\n"
