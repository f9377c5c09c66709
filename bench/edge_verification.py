"""What inbound verification (SPF, DKIM, DMARC; issue 28) costs the edge: throughput and
reply latency with it on against off, in the same run, against a private dnsmasq.

Workload: 10 KiB messages, each with one DKIM signature (rsa-sha256, 2048 bits), over 20
concurrent sessions from 127.0.0.1; the DNS server publishes the sender's SPF record
(`ip4:127.0.0.0/8`), DKIM key and DMARC policy (`p=reject`) with a TTL of 300 s, so every
message passes all three, and the edge's resolver cache answers repeat lookups. The edge
stores into memory, so what differs between the two is verification alone.
Target (issue 28): on >= 0.75 x off.

    python bench/edge_verification.py [--sessions 20] [--messages-per-session 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "mailcore" / "python")]

from bench.edge_throughput import drive  # noqa: E402

BODY = (b"From: Alice <alice@crepes.fr>\r\nTo: bob@hamburger.edu\r\nSubject: bench\r\n"
        b"Message-ID: <bench@crepes.fr>\r\n\r\n" + (b"x" * 78 + b"\r\n") * 124)


async def _serve(verify: bool, port: int, dns: str) -> None:
    from edge.smtp.accounts import CachingAccountDirectory
    from edge.smtp.handler import EdgeHandler, OffLoopWriter
    from edge.smtp.inbound import InboundVerifier
    from edge.smtp.server import Edge, EdgeConfig
    from mailcore.adapters.memory.directory import InMemoryAccountDirectory
    from mailcore.adapters.memory.store import InMemoryMessageStore
    from mailcore.services.recipients import HostedDomains

    executor = ThreadPoolExecutor(max_workers=32)
    domains = HostedDomains.of(["hamburger.edu"])
    environ = {"MAILPIPE_DNS": dns, "MAILPIPE_VERIFY": "on" if verify else "off"}
    verifier = InboundVerifier.from_environ(environ, "mx.hamburger.edu", domains)
    directory = CachingAccountDirectory(InMemoryAccountDirectory({"bob@hamburger.edu": "x"}))
    config = EdgeConfig(hostname="mx.hamburger.edu", host="127.0.0.1", mx_port=port,
                        submission_port=None, health_port=None,
                        max_connections_per_client=1000)
    handler = EdgeHandler(OffLoopWriter(InMemoryMessageStore(), executor), directory, domains,
                          config.hostname, executor, verifier=verifier)
    await Edge(config, handler, None, None).start()
    await asyncio.Event().wait()


def _measure(verify: bool, dns: str, message: bytes, sessions: int, count: int
             ) -> dict[str, float]:
    from mailpipe.local.launcher import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "on" if verify else "off", str(port), dns],
        cwd=ROOT, env={**os.environ, "POWERTOOLS_LOG_LEVEL": "ERROR"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                asyncio.run(drive(port, 1, 1, message))  # also warms the server up
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        cpu_before = _cpu_seconds(server.pid)
        elapsed, latencies = asyncio.run(drive(port, sessions, count, message))
        cpu = _cpu_seconds(server.pid) - cpu_before
        # One session alone: the latency a message's sender waits for, without queueing
        # behind 19 others.
        _, alone = asyncio.run(drive(port, 1, 50, message))
        ordered = sorted(latencies)
        return {"rate": len(ordered) / elapsed, "p50": statistics.median(ordered) * 1000,
                "p99": ordered[round(0.99 * (len(ordered) - 1))] * 1000,
                "cpu": cpu / len(ordered) * 1000, "alone": statistics.median(alone) * 1000}
    finally:
        server.terminate()
        server.wait(timeout=30)


def _cpu_seconds(pid: int) -> float:
    """The process's user and system CPU so far (/proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _signed_message_and_zone() -> tuple[bytes, Any]:
    import dkim

    from mailcore.authentication.signing_keys import RSA, new_keys
    from tests.dns_support import Zone

    class _ZoneWithTtl(Zone):
        def config(self) -> str:
            # dnsmasq gives its own records a TTL of 0; published zones say 300 to 3600 s.
            return super().config() + "local-ttl=300\n"

    key = next(key for key in new_keys("crepes.fr", date.today()) if key.algorithm == RSA)
    message = dkim.sign(BODY, key.selector.encode(), key.domain.encode(),
                        key.private_key.encode(), signature_algorithm=RSA.encode()) + BODY
    zone = _ZoneWithTtl().add_txt(key.record_name, key.txt_record)
    zone.add_txt("crepes.fr", "v=spf1 ip4:127.0.0.0/8 -all")
    zone.add_txt("_dmarc.crepes.fr", "v=DMARC1; p=reject")
    return message, zone


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", nargs=3, metavar=("ON_OFF", "PORT", "DNS"))
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages-per-session", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each, interleaved; the median run is reported")
    arguments = parser.parse_args()
    if arguments.serve:
        verify, port, dns = arguments.serve
        asyncio.run(_serve(verify == "on", int(port), dns))
        return
    from tests.dns_support import Dnsmasq

    message, zone = _signed_message_and_zone()
    sessions, count = arguments.sessions, arguments.messages_per_session
    print(f"{sessions} sessions x {count} messages of {len(message)} bytes (one rsa-sha256 "
          f"signature), {os.cpu_count()} cores, median of {arguments.rounds} interleaved rounds")
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    with Dnsmasq(zone) as dns:
        for _ in range(arguments.rounds):
            for verify in (False, True):
                runs[verify].append(_measure(verify, dns.address, message, sessions, count))
    results = {verify: sorted(runs[verify], key=lambda run: run["rate"])[len(runs[verify]) // 2]
               for verify in runs}
    for verify, figures in results.items():
        print(f"verification {'on ' if verify else 'off'}  {figures['rate']:7.0f} msg/s"
              f"  p50 {figures['p50']:6.1f} ms  p99 {figures['p99']:6.1f} ms"
              f"  CPU {figures['cpu']:.2f} ms/msg  one session alone: p50 "
              f"{figures['alone']:.1f} ms")
    ratio = results[True]["rate"] / results[False]["rate"]
    added = results[True]["alone"] - results[False]["alone"]
    cpu = results[True]["cpu"] - results[False]["cpu"]
    print(f"on/off throughput {ratio:.2f} (target >= 0.75: {'met' if ratio >= 0.75 else 'NOT met'})"
          f"; added latency per message {added:.1f} ms (one session), added CPU {cpu:.2f} ms")


if __name__ == "__main__":
    main()
