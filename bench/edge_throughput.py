"""Edge throughput and reply latency, 10 KiB messages over 50 concurrent sessions.

Three servers in one run, each in its own process, driven by the same asyncio client:
  (a) bare aiosmtpd whose handler stores nothing (the baseline),
  (b) the mailpipe edge with a zero-latency store,
  (c) the mailpipe edge with 50 ms injected storage latency (an S3 PUT's order).
A store call that blocked the event loop would serialise (c) at 20 messages/s.

    python bench/edge_throughput.py [--sessions 50] [--messages-per-session 40]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MESSAGE = (b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: bench\r\n\r\n"
           + (b"x" * 78 + b"\r\n") * 128)  # 10 KiB


# -- the servers (run as: python bench/edge_throughput.py --serve KIND PORT) -----------------
class BareHandler:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


async def _serve(kind: str, port: int) -> None:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    if kind == "bare":
        server = await loop.create_server(
            lambda: SMTP(BareHandler(), hostname="bench", data_size_limit=25 * 1024 * 1024),
            host="127.0.0.1", port=port)
        async with server:
            await server.serve_forever()
        return
    from edge_smtp.accounts import CachingAccountDirectory
    from edge_smtp.handler import EdgeHandler
    from edge_smtp.server import Edge, EdgeConfig
    from mailcore.adapters.memory.directory import InMemoryAccountDirectory
    from mailcore.adapters.memory.store import InMemoryMessageStore
    from mailcore.services.recipients import HostedDomains

    latency = 0.05 if kind == "edge-50ms" else 0.0
    store = InMemoryMessageStore(latency_seconds=latency)
    directory = CachingAccountDirectory(InMemoryAccountDirectory({"bob@hamburger.edu": "x"}))
    config = EdgeConfig(hostname="bench", host="127.0.0.1", mx_port=port, submission_port=None,
                        health_port=None, max_connections_per_client=1000)
    handler = EdgeHandler(store, directory, HostedDomains.of(["hamburger.edu"]), "bench",
                          ThreadPoolExecutor(max_workers=64))
    await Edge(config, handler, None, None).start()
    await asyncio.Event().wait()


# -- the client ----------------------------------------------------------------------------
async def reply(reader: asyncio.StreamReader) -> bytes:
    """The last line of an SMTP reply."""
    while True:
        line = await reader.readline()
        if line[3:4] != b"-":
            return line


async def open_session(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connected, greeted and EHLO said."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reply(reader)
    writer.write(b"EHLO client.bench\r\n")
    await reply(reader)
    return reader, writer


async def begin_message(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """MAIL, RCPT and DATA: the server waits for the message."""
    for command in (b"MAIL FROM:<alice@crepes.fr>", b"RCPT TO:<bob@hamburger.edu>", b"DATA"):
        writer.write(command + b"\r\n")
        await reply(reader)


async def _session(port: int, messages: int, latencies: list[float]) -> None:
    reader, writer = await open_session(port)
    for _ in range(messages):
        await begin_message(reader, writer)
        writer.write(MESSAGE + b".\r\n")
        started = time.perf_counter()
        line = await reply(reader)
        latencies.append(time.perf_counter() - started)
        if not line.startswith(b"250"):
            raise RuntimeError(f"not accepted: {line!r}")
    writer.write(b"QUIT\r\n")
    await reply(reader)
    writer.close()


async def _drive(port: int, sessions: int, messages: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(_session(port, messages, latencies) for _ in range(sessions)))
    return time.perf_counter() - started, latencies


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _measure(kind: str, sessions: int, messages: int) -> dict[str, float]:
    from mailpipe.local.launcher import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", kind, str(port)], cwd=ROOT,
                              env={**os.environ, "POWERTOOLS_LOG_LEVEL": "ERROR"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                asyncio.run(_drive(port, 1, 1))  # also warms the server up
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        elapsed, latencies = asyncio.run(_drive(port, sessions, messages))
        ordered = sorted(latencies)
        return {
            "rate": len(latencies) / elapsed,
            "p50": statistics.median(ordered) * 1000,
            "p99": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000,
            "rss": _peak_rss_mib(server.pid),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"))
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--messages-per-session", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each server, interleaved; the median run is reported")
    arguments = parser.parse_args()
    if arguments.serve:
        asyncio.run(_serve(arguments.serve[0], int(arguments.serve[1])))
        return
    sessions, messages = arguments.sessions, arguments.messages_per_session
    print(f"{sessions} sessions x {messages} messages of {len(MESSAGE)} bytes, "
          f"{os.cpu_count()} cores, median of {arguments.rounds} interleaved rounds")
    kinds = ("bare", "edge-0ms", "edge-50ms")
    # Interleaved rounds, so that noise from the rest of the machine hits all three alike.
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    for _ in range(arguments.rounds):
        for kind in kinds:
            runs[kind].append(_measure(kind, sessions, messages))
    results = {kind: sorted(runs[kind], key=lambda run: run["rate"])[len(runs[kind]) // 2]
               for kind in kinds}
    baseline = results["bare"]["rate"]
    labels = {"bare": "(a) bare aiosmtpd, stores nothing", "edge-0ms": "(b) edge, 0 ms store",
              "edge-50ms": "(c) edge, 50 ms store"}
    for kind, figures in results.items():
        ratio = figures["rate"] / baseline
        print(f"{labels[kind]:36} {figures['rate']:7.0f} msg/s  ratio {ratio:.2f}"
              f"  p50 {figures['p50']:6.1f} ms  p99 {figures['p99']:6.1f} ms"
              f"  peak RSS {figures['rss']:.0f} MiB")
    print("targets: (b) >= 0.5 x (a): "
          f"{'met' if results['edge-0ms']['rate'] >= 0.5 * baseline else 'NOT met'}; "
          "(c) >= 0.3 x (a): "
          f"{'met' if results['edge-50ms']['rate'] >= 0.3 * baseline else 'NOT met'}")


if __name__ == "__main__":
    main()
