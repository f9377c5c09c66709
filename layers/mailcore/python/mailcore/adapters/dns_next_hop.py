"""Where mail for a domain goes: its MX hosts by preference (RFC 5321 §5.1), or a relay."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mailcore.domain.next_hop import NextHop
from mailcore.errors import PermanentFailure, TransientFailure


class NoMailDomain(PermanentFailure):
    """The domain takes no mail: it does not exist, or says so with a null MX (RFC 7505)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.public = reason


class DnsNextHopResolver:
    def __init__(self, resolver: Any = None, port: int = 25,
                 overrides: Mapping[str, NextHop] | None = None) -> None:
        self._resolver = resolver
        self._port = port
        self._overrides = dict(overrides or {})

    def _dns(self) -> Any:
        if self._resolver is None:
            import dns.resolver

            self._resolver = dns.resolver.Resolver()
            self._resolver.lifetime = 10.0
        return self._resolver

    def resolve(self, domain: str) -> list[NextHop]:
        if domain in self._overrides:
            return [self._overrides[domain]]
        import dns.exception
        import dns.resolver

        try:
            answer = self._dns().resolve(domain, "MX")
        except dns.resolver.NXDOMAIN as exc:
            raise NoMailDomain("5.1.2", f"domain {domain} does not exist") from exc
        except dns.resolver.NoAnswer:
            # No MX: the domain's own address records are the implicit MX.
            return [NextHop(domain, self._port)]
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise TransientFailure(f"DNS lookup for {domain} failed") from exc
        records = sorted(answer, key=lambda record: record.preference)
        hosts = [str(record.exchange).rstrip(".") for record in records]
        if not any(hosts):
            raise NoMailDomain("5.1.10", f"domain {domain} does not accept mail (null MX)")
        return [NextHop(host, self._port) for host in hosts if host]


    def addresses(self, host: str) -> list[str]:
        """`host`'s A then AAAA records from the same server as its MX record (the stack's
        resolver), so the address connected to is the one that server gave. A lookup that
        fails is an OSError: the SMTP client tries the next MX host, then defers."""
        import dns.exception
        import dns.resolver

        found: list[str] = []
        for kind in ("A", "AAAA"):
            try:
                found += [record.address for record in self._dns().resolve(host, kind)]
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except dns.exception.DNSException as exc:
                raise OSError(f"DNS lookup of {host} {kind} failed: {type(exc).__name__}"
                              ) from exc
        return found


class RelayNextHop:
    """Everything goes to one smart host (Amazon SES's SMTP endpoint, for example)."""

    def __init__(self, hop: NextHop) -> None:
        self._hop = hop

    def resolve(self, domain: str) -> list[NextHop]:
        return [self._hop]


def parse_hop(text: str, default_port: int = 25) -> NextHop:
    host, _, port = text.strip().rpartition(":") if ":" in text else (text.strip(), "", "")
    return NextHop(host or text.strip(), int(port) if port else default_port,
                   operator_named=True)


def parse_overrides(text: str) -> dict[str, NextHop]:
    """"crepes.fr=127.0.0.1:2525,hamburger.edu=127.0.0.1:3525" (the local runtime's --mx)."""
    overrides = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        domain, _, hop = item.partition("=")
        overrides[domain.strip().lower()] = parse_hop(hop)
    return overrides
