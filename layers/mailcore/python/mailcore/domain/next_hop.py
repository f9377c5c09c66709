"""Where the SMTP client delivers a job, and what each recipient got in reply."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NextHop:
    host: str
    port: int
    # Named by the operator (the relay, an --mx override): it may be on any address. A
    # hop found in DNS must have a public one, or anyone's MX record could point our
    # SMTP client at loopback, the VPC or the metadata service.
    operator_named: bool = False
    # Who demands STARTTLS with a certificate valid for `host` ("MTA-STS policy of
    # example.com", RFC 8461 §4.2), or "" for opportunistic TLS (RFC 7435). No delivery in
    # clear or to an unverified host then.
    valid_tls_required_by: str = ""


@dataclass(frozen=True)
class RecipientReply:
    recipient: str
    code: int  # 0 when no SMTP reply was had (connection failed)
    text: str
    remote_mta: str | None
