"""The CPU one SPF evaluation costs the edge: check_host() of a typical record
(`v=spf1 ip4:... include:... -all`, the include holding three networks and ~all),
first over an in-memory DNS (the evaluator alone: parsing, macros, matching), then
through dnsmasq on loopback and ResolverDns (what the edge pays: the evaluator plus
dnspython building, sending and reading each query).

    python bench/spf_evaluation.py [--evaluations 5000]

Printed per case: CPU time (this process) and wall time per evaluation, and the result.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailcore.adapters.dns_resolver import DnsServer, ResolverDns, async_resolver
from mailcore.authentication.dns import AsyncDns
from mailcore.authentication.spf import check_host
from tests.dns_support import Dnsmasq, Zone

RECORDS = {"crepes.test": ["v=spf1 ip4:192.0.2.0/24 include:_spf.mail.test -all"],
           "_spf.mail.test": ["v=spf1 ip4:198.51.100.0/24 ip4:203.0.113.0/24 "
                              "ip6:2001:db8::/32 ~all"]}
CLIENTS = [("192.0.2.9", "the first ip4 matches, no include"),
           ("203.0.113.9", "pass through the include"),
           ("10.0.0.1", "fail: every term and the include")]


class RecordsOnly:
    """An AsyncDns answering RECORDS' TXT at once, nothing else."""

    async def txt(self, name: str) -> list[str]:
        return list(RECORDS.get(name, []))

    async def a(self, name: str) -> list[str]:
        return []

    async def aaaa(self, name: str) -> list[str]:
        return []

    async def mx(self, name: str) -> list[tuple[int, str]]:
        return []

    async def ptr(self, address: str) -> list[str]:
        return []


def measure(dns: AsyncDns, ip: str, evaluations: int) -> tuple[float, float, str]:
    async def evaluate(count: int) -> str:
        result = ""
        for _ in range(count):
            result = str((await check_host(ip, "crepes.test", "alice@crepes.test",
                                           dns=dns)).result)
        return result

    asyncio.run(evaluate(max(1, evaluations // 20)))  # warm: imports, caches
    cpu, wall = time.process_time(), time.perf_counter()
    result = asyncio.run(evaluate(evaluations))
    return ((time.process_time() - cpu) / evaluations, (time.perf_counter() - wall) / evaluations,
            result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=5000)
    arguments = parser.parse_args()
    for ip, case in CLIENTS:
        cpu, wall, result = measure(RecordsOnly(), ip, arguments.evaluations)
        print(f"in-memory DNS, {case}: {result}, {cpu * 1e6:.0f} µs CPU, "
              f"{wall * 1e6:.0f} µs wall per evaluation")
    with Dnsmasq(Zone(txt=RECORDS)) as server:
        dns = ResolverDns(async_resolver(DnsServer.parse(server.address)))
        for ip, case in CLIENTS:
            cpu, wall, result = measure(dns, ip, max(1, arguments.evaluations // 5))
            print(f"dnsmasq + ResolverDns, {case}: {result}, {cpu * 1e6:.0f} µs CPU, "
                  f"{wall * 1e3:.2f} ms wall per evaluation")


if __name__ == "__main__":
    main()
