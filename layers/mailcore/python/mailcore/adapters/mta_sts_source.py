"""Finding and fetching a domain's MTA-STS policy (RFC 8461 §3): the `_mta-sts` TXT record
and the policy host's addresses through the stack's resolver, the policy file over HTTPS
with the certificate verified for the policy host's name."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from typing import TYPE_CHECKING

from mailcore.adapters.smtp_client import is_public
from mailcore.config import ConfigurationError
from mailcore.domain.mta_sts import POLICY_SIZE_LIMIT, policy_id_of
from mailcore.errors import TransientFailure

if TYPE_CHECKING:
    import dns.resolver

POLICY_PATH = "/.well-known/mta-sts.txt"
# What one step of a policy fetch may take (connect, handshake, each read), and twice
# that the whole fetch: §3.3 asks for a short timeout, and a policy host that hangs or
# sends a byte at a time must not hold delivery up.
FETCH_SECONDS = 5.0
CA_BUNDLE_VARIABLE = "MAILPIPE_MTA_STS_CA_BUNDLE"


class PolicyUnavailable(TransientFailure):
    """No policy could be had now (DNS, connection, TLS or HTTP): a cached one holds."""


def verified_tls(ca_bundle: str = "") -> ssl.SSLContext:
    """Certificates checked against `ca_bundle` (a PEM file), or the system's CAs when "".
    Both the policy host's and, under an enforced policy, the MX hosts' (§4.2)."""
    try:
        return ssl.create_default_context(cafile=ca_bundle or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"{CA_BUNDLE_VARIABLE}: no CA bundle at {ca_bundle}") from exc


class HttpsPolicySource:
    """services.mta_sts.PolicySource. `port` and `public_only` are for tests, whose policy
    server listens on loopback and an unprivileged port: a policy host found in DNS must
    have a public address, as an MX host must (smtp_client.public_address)."""

    def __init__(self, resolver: dns.resolver.Resolver, tls: ssl.SSLContext, *,
                 port: int = 443, timeout: float = FETCH_SECONDS,
                 public_only: bool = True) -> None:
        self._resolver = resolver
        self._tls = tls
        self._port = port
        self._timeout = timeout
        self._public_only = public_only
        self.fetches = 0

    def policy_id(self, domain: str) -> str | None:
        records = self._lookup(f"_mta-sts.{domain}", "TXT")
        return policy_id_of([b"".join(record.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
                             for record in records])

    def fetch(self, domain: str) -> str:
        host = f"mta-sts.{domain}"
        addresses = [str(record.address)  # type: ignore[attr-defined]
                     for kind in ("A", "AAAA") for record in self._lookup(host, kind)]
        if self._public_only:
            addresses = [address for address in addresses
                         if is_public(address)]
        if not addresses:
            raise PolicyUnavailable(f"{host} has no {'public ' * self._public_only}address")
        self.fetches += 1
        try:
            return self._get(host, addresses[0])
        except (OSError, ValueError) as exc:
            raise PolicyUnavailable(f"https://{host}{POLICY_PATH}: {exc}") from exc

    def _lookup(self, name: str, kind: str) -> list[object]:
        import dns.exception
        import dns.resolver

        try:
            return list(self._resolver.resolve(name, kind, search=False))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise PolicyUnavailable(f"{kind} {name}: {type(exc).__name__}") from exc

    def _get(self, host: str, address: str) -> str:
        deadline = time.monotonic() + 2 * self._timeout
        raw = socket.create_connection((address, self._port), timeout=self._timeout)
        # Each read has its timeout, but a host that sends a byte at a time never lets one
        # expire (http.client reads the status line and headers in lines): at the deadline
        # the connection is cut, whatever is being read.
        # (The TLS socket takes the connection over from `raw`: the one that holds it is
        # the one cut.)
        holder = [raw]
        cut = threading.Timer(max(deadline - time.monotonic(), 0), _cut, args=(holder,))
        cut.daemon = True
        cut.start()
        try:
            return self._exchange(host, holder, deadline)
        finally:
            cut.cancel()
            holder[0].close()

    def _exchange(self, host: str, holder: list[socket.socket], deadline: float) -> str:
        # Imported here: a fetch happens once per domain and max_age, and http.client
        # loads the email package's parser, which the function's cold start need not.
        import http.client

        sock = self._tls.wrap_socket(holder[0], server_hostname=host)
        holder[0] = sock
        # Connected by the address our resolver gave, verified for the host's name.
        connection = http.client.HTTPSConnection(host, self._port, timeout=self._timeout,
                                                 context=self._tls)
        connection.sock = sock
        try:
            connection.request("GET", POLICY_PATH, headers={"Accept": "text/plain"})
            response = connection.getresponse()
            # §3.3: no redirects; only a 200 with a text/plain policy counts.
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            if response.headers.get_content_type() != "text/plain":
                raise ValueError(f"not text/plain: {response.headers.get_content_type()}")
            body = b""
            while chunk := response.read1(POLICY_SIZE_LIMIT + 1 - len(body)):
                body += chunk
                if len(body) > POLICY_SIZE_LIMIT:
                    raise ValueError(f"policy larger than {POLICY_SIZE_LIMIT} bytes")
                if time.monotonic() > deadline:
                    raise ValueError(f"policy not fetched in {2 * self._timeout:g} s")
            if time.monotonic() > deadline:  # cut short: what came is not the policy
                raise ValueError(f"policy not fetched in {2 * self._timeout:g} s")
            return body.decode("utf-8")
        except http.client.HTTPException as exc:
            raise ValueError(f"not an HTTP answer: {type(exc).__name__}") from exc
        finally:
            connection.close()


def _cut(holder: list[socket.socket]) -> None:
    # socket.socket's own shutdown, under TLS too: the reading thread's recv returns at
    # once (SSLSocket.shutdown would also drop its TLS state under that thread).
    with contextlib.suppress(OSError):
        socket.socket.shutdown(holder[0], socket.SHUT_RDWR)
