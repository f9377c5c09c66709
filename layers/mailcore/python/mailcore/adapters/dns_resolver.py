"""The stack's one DNS resolver (issue 28): edge verification, direct delivery's MX
lookups and `mailpipe dns --check` all ask the server MAILPIPE_DNS names (HOST:PORT, set by
`mailpipe up --dns` and the template's DnsServer parameter), or, when it is empty, the
system's (the VPC resolver in AWS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from mailcore.authentication.dns import DnsFailure

if TYPE_CHECKING:
    import dns.asyncresolver
    import dns.resolver

_Resolver = TypeVar("_Resolver", "dns.resolver.Resolver", "dns.asyncresolver.Resolver")
DNS_SERVER_VARIABLE = "MAILPIPE_DNS"
# What one lookup may take. A message's verification makes a few in parallel and a few in
# sequence (an SPF include chain), so its whole budget is a small multiple of this.
LOOKUP_SECONDS = 3.0


@dataclass(frozen=True)
class DnsServer:
    host: str
    port: int = 53

    @classmethod
    def parse(cls, text: str | None) -> DnsServer | None:
        """"127.0.0.1:5353", "[::1]:5353" or "10.0.0.2" (port 53); None for ""."""
        text = (text or "").strip()
        if not text:
            return None
        host, port = text, "53"
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = rest.removeprefix(":") or "53"
        elif text.count(":") == 1:
            host, _, port = text.partition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"not a DNS server (HOST:PORT): {text!r}")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def sync_resolver(server: DnsServer | None, lifetime: float = LOOKUP_SECONDS
                  ) -> dns.resolver.Resolver:
    import dns.resolver

    return _asking(dns.resolver.Resolver(configure=server is None), server, lifetime)


def async_resolver(server: DnsServer | None, lifetime: float = LOOKUP_SECONDS
                   ) -> dns.asyncresolver.Resolver:
    import dns.asyncresolver

    return _asking(dns.asyncresolver.Resolver(configure=server is None), server, lifetime)


def _asking(resolver: _Resolver, server: DnsServer | None, lifetime: float) -> _Resolver:
    """The resolver asking `server` (else the system's, read when it was made)."""
    if server is not None:
        resolver.nameservers = [server.host]
        resolver.port = server.port
    resolver.lifetime = lifetime
    return resolver


class ResolverDns:
    """authentication.dns.AsyncDns over dnspython's asynchronous resolver: every lookup
    within `budget` seconds, a failure to answer is DnsFailure (temperror)."""

    def __init__(self, resolver: dns.asyncresolver.Resolver, budget: float = LOOKUP_SECONDS
                 ) -> None:
        self._resolver = resolver
        self._budget = budget

    async def _records(self, name: str, kind: str) -> list[object]:
        # Here, not at the top: direct delivery uses this module's synchronous half, and the
        # deliver function's cold start does not otherwise load asyncio.
        import asyncio

        import dns.exception
        import dns.name
        import dns.resolver

        try:
            answer = await asyncio.wait_for(
                self._resolver.resolve(name, kind, search=False, lifetime=self._budget),
                self._budget)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (TimeoutError, dns.exception.Timeout, dns.resolver.NoNameservers,
                dns.resolver.LifetimeTimeout) as exc:
            raise DnsFailure(f"{kind} {name}: {type(exc).__name__}") from exc
        except (dns.exception.DNSException, ValueError) as exc:
            # A name that cannot be asked (too long, an empty label): nothing is there.
            if isinstance(exc, (dns.name.LabelTooLong, dns.name.NameTooLong,
                                dns.name.EmptyLabel, ValueError)):
                return []
            raise DnsFailure(f"{kind} {name}: {type(exc).__name__}") from exc
        return list(answer)

    async def txt(self, name: str) -> list[str]:
        return [b"".join(record.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
                for record in await self._records(name, "TXT")]

    async def a(self, name: str) -> list[str]:
        return [record.address for record in await self._records(name, "A")]  # type: ignore[attr-defined]

    async def aaaa(self, name: str) -> list[str]:
        return [record.address for record in await self._records(name, "AAAA")]  # type: ignore[attr-defined]

    async def mx(self, name: str) -> list[tuple[int, str]]:
        return [(record.preference, str(record.exchange).rstrip("."))  # type: ignore[attr-defined]
                for record in await self._records(name, "MX")]

    async def ptr(self, address: str) -> list[str]:
        import dns.reversename

        try:
            name = dns.reversename.from_address(address).to_text()
        except (ValueError, SyntaxError):
            return []
        return [str(record.target).rstrip(".")  # type: ignore[attr-defined]
                for record in await self._records(name, "PTR")]
