"""The SMTP client side: persistent connections per next hop, one transaction per job."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import smtplib
import socket
import ssl
from collections.abc import Callable

from mailcore.domain.next_hop import NextHop, RecipientReply
from mailcore.observability import logger

_LINE_ENDING = re.compile(rb"\r\n|\r|\n")


class TlsRequired(smtplib.SMTPException):
    pass


class NoPublicAddress(OSError):
    """A next hop from DNS whose addresses are all loopback, private, link-local or
    otherwise not on the public Internet: we do not connect there."""


# A DNS-found host's addresses (A, then AAAA) as the stack's resolver gives them.
AddressLookup = Callable[[str], list[str]]


class SmtpClientPool:
    """Connections stay open for the life of the pool (one Lambda invocation), so jobs for
    the same next hop in a batch share one connection, with RSET between transactions."""

    def __init__(self, local_hostname: str, *, require_tls: bool = False,
                 credentials: tuple[str, str] | None = None, timeout: float = 30.0,
                 tls_context: ssl.SSLContext | None = None,
                 verified_tls: ssl.SSLContext | None = None,
                 addresses: AddressLookup | None = None) -> None:
        self._local_hostname = local_hostname
        self._addresses = addresses
        self._require_tls = require_tls
        self._credentials = credentials
        self._timeout = timeout
        if tls_context is None:
            tls_context = ssl.create_default_context()
            if not require_tls:
                # Opportunistic TLS between MTAs (RFC 7435): encrypt even when the peer's
                # certificate would not verify, rather than send in clear.
                tls_context.check_hostname = False
                tls_context.verify_mode = ssl.CERT_NONE
        self._tls = tls_context
        # For hops that demand a valid certificate (MTA-STS): the system's CAs by default.
        self._verified_tls = verified_tls
        self._open: dict[NextHop, smtplib.SMTP] = {}
        self.connections_opened = 0

    def send(self, hops: list[NextHop], mail_from: str, recipients: tuple[str, ...],
             raw: bytes) -> list[RecipientReply]:
        failure = "no next hop"
        refused: list[str] = []  # hops whose every address is not public, and why
        for hop in hops:
            try:
                client = self._connection(hop)
            except NoPublicAddress as exc:
                refused.append(str(exc))
                failure = f"4.4.1 {exc}"
                logger.warning("next hop refused", host=hop.host, port=hop.port, error=str(exc))
                continue
            except (OSError, smtplib.SMTPException) as exc:
                failure = f"4.4.1 connection to {hop.host}:{hop.port} failed: {exc}"
                if hop.valid_tls_required_by and isinstance(exc, ssl.SSLError | TlsRequired):
                    failure = (f"4.7.5 {hop.valid_tls_required_by}: no valid TLS at "
                               f"{hop.host}: {exc}")
                logger.info("next hop unavailable", host=hop.host, port=hop.port, error=str(exc))
                continue
            try:
                return self._transaction(client, hop, mail_from, recipients, raw)
            except (OSError, smtplib.SMTPException) as exc:
                self._drop(hop)
                failure = f"4.4.2 connection to {hop.host} lost: {exc}"
        if hops and len(refused) == len(hops):
            # Every MX host points inside: a misconfigured or hostile domain, not a
            # passing fault (as Postfix bounces mail whose MX loops back to itself).
            reason = "5.4.4 no next hop with a public address: " + "; ".join(refused)
            return [RecipientReply(rcpt, 550, reason, None) for rcpt in recipients]
        return [RecipientReply(rcpt, 0, failure, None) for rcpt in recipients]

    def close(self) -> None:
        for hop in list(self._open):
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._open[hop].quit()
            self._drop(hop)

    def _connection(self, hop: NextHop) -> smtplib.SMTP:
        client = self._open.get(hop)
        if client is not None:
            try:
                client.rset()
                return client
            except (OSError, smtplib.SMTPException):
                self._drop(hop)
        # Connect to the address checked, not to the name again (DNS could answer
        # differently a second time).
        client = smtplib.SMTP(self._address(hop), hop.port,
                              local_hostname=self._local_hostname, timeout=self._timeout)
        try:
            client.ehlo()
            if client.has_extn("starttls"):
                # The name sent (SNI) and verified is the hop's, not the address's.
                client._host = hop.host  # type: ignore[attr-defined]
                client.starttls(context=self._tls_for(hop))
                client.ehlo()
            elif self._require_tls or hop.valid_tls_required_by:
                raise TlsRequired(f"{hop.host} does not offer STARTTLS")
            if self._credentials:
                client.login(*self._credentials)
        except (OSError, smtplib.SMTPException):
            client.close()
            raise
        self._open[hop] = client
        self.connections_opened += 1
        return client

    def _address(self, hop: NextHop) -> str:
        return hop.host if hop.operator_named else public_address(hop, self._addresses)

    def _tls_for(self, hop: NextHop) -> ssl.SSLContext:
        if not hop.valid_tls_required_by:
            return self._tls
        if self._verified_tls is None:
            self._verified_tls = ssl.create_default_context()
        return self._verified_tls

    def _drop(self, hop: NextHop) -> None:
        client = self._open.pop(hop, None)
        if client is not None:
            client.close()

    def _transaction(self, client: smtplib.SMTP, hop: NextHop, mail_from: str,
                     recipients: tuple[str, ...], raw: bytes) -> list[RecipientReply]:
        # Never pass a bare CR or LF on: whatever was stored goes out with CRLF only.
        data = _LINE_ENDING.sub(b"\r\n", raw)
        options = []
        if client.has_extn("size"):
            limit = int(client.esmtp_features.get("size") or 0)
            if limit and len(data) > limit:
                return self._all(recipients, 552, "5.3.4 message too big for the next hop", hop)
            options.append(f"SIZE={len(data)}")
        if any(byte > 127 for byte in data) and client.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        if not (mail_from + "".join(recipients)).isascii():
            if not client.has_extn("smtputf8"):
                return self._all(recipients, 553, "5.6.7 next hop does not support SMTPUTF8",
                                 hop)
            options.append("SMTPUTF8")
        code, text = client.mail(mail_from, options)
        if code >= 400:
            client.rset()
            return self._all(recipients, code, text.decode("utf-8", "replace"), hop)
        replies: dict[str, RecipientReply] = {}
        accepted = []
        for rcpt in recipients:
            code, text = client.rcpt(rcpt)
            replies[rcpt] = RecipientReply(rcpt, code, text.decode("utf-8", "replace"), hop.host)
            if 200 <= code < 300:
                accepted.append(rcpt)
        if not accepted:
            client.rset()
            return list(replies.values())
        try:
            code, text = client.data(data)
        except smtplib.SMTPDataError as exc:
            error = exc.smtp_error
            code, text = exc.smtp_code, error if isinstance(error, bytes) else error.encode()
        for rcpt in accepted:
            replies[rcpt] = RecipientReply(rcpt, code, text.decode("utf-8", "replace"), hop.host)
        return list(replies.values())

    @staticmethod
    def _all(recipients: tuple[str, ...], code: int, text: str,
             hop: NextHop) -> list[RecipientReply]:
        return [RecipientReply(rcpt, code, text, hop.host) for rcpt in recipients]


def public_address(hop: NextHop, addresses: AddressLookup | None = None) -> str:
    """The first public address of `hop` (its A/AAAA records, from `addresses` or else the
    system's resolver), or NoPublicAddress naming the addresses refused."""
    found = addresses(hop.host) if addresses is not None else _system_addresses(hop)
    if not found:
        raise OSError(f"{hop.host} has no address")
    for text in found:
        if is_public(text):
            return text
    raise NoPublicAddress(f"{hop.host} has no public address ({', '.join(found)})")


# IPv6 prefixes whose addresses carry an IPv4 address that a gateway or the host's own
# stack may reach: NAT64's (RFC 6052, RFC 8215) and the deprecated IPv4-compatible ::/96.
_IPV4_CARRYING = tuple(ipaddress.ip_network(prefix) for prefix in (
    "64:ff9b::/96", "64:ff9b:1::/48", "::/96"))


def is_public(text: str) -> bool:
    """On the public Internet, and so is any IPv4 address it carries (mapped, 6to4,
    NAT64, IPv4-compatible): 64:ff9b::a00:1 is 10.0.0.1 behind a NAT64 gateway."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        carried = address.ipv4_mapped or address.sixtofour
        if carried is None and any(address in prefix for prefix in _IPV4_CARRYING):
            carried = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if carried is not None and not carried.is_global:
            return False
    return True


def _system_addresses(hop: NextHop) -> list[str]:
    try:
        found = socket.getaddrinfo(hop.host, hop.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"{hop.host} does not resolve: {exc}") from exc
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))
