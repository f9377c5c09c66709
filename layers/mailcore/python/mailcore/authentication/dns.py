"""The DNS that verification asks, as an interface: asynchronous, each lookup within its
own time budget, answered by the stack's one resolver (adapters/dns_resolver.py).

An empty answer (NXDOMAIN or no record of the type) is an empty list: SPF counts both as a
"void lookup" (RFC 7208 §4.6.4). A timeout, SERVFAIL or no reachable server is DnsFailure,
which every method turns into `temperror` (RFC 7208 §2.6.6, RFC 7489 §6.6.3).
"""

from __future__ import annotations

from typing import Protocol


class DnsFailure(Exception):
    """The lookup did not get an answer (timeout, SERVFAIL, no server): a temporary error."""


class AsyncDns(Protocol):
    async def txt(self, name: str) -> list[str]:
        """Each TXT record's strings joined into one (RFC 7208 §3.3, RFC 6376 §3.6.2.2)."""
        ...

    async def a(self, name: str) -> list[str]: ...

    async def aaaa(self, name: str) -> list[str]: ...

    async def mx(self, name: str) -> list[tuple[int, str]]:
        """(preference, exchange without the trailing dot)."""
        ...

    async def ptr(self, address: str) -> list[str]:
        """The names of an IPv4 or IPv6 address, without trailing dots."""
        ...
