"""Edge throughput and reply latency, 10 KiB messages over 50 concurrent sessions.

Five servers in one run, each in its own process, driven by the same asyncio client:
  (a) bare aiosmtpd whose handler stores nothing (the baseline),
  (b) the mailpipe edge with a zero-latency store,
  (c) the mailpipe edge with 50 ms injected storage latency (an S3 PUT's order),
  (d) the mailpipe edge with its real S3 writer (asyncio HTTP, botocore's signature)
      against a minimal S3 endpoint in another process that answers every PUT at once:
      the edge's own cost per message, which (b) leaves out;
  (e) as (d), with what the edge used before: botocore's PutObject in a storage thread.
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
from typing import Any

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
    from edge.smtp.accounts import CachingAccountDirectory
    from edge.smtp.handler import EdgeHandler, OffLoopWriter
    from edge.smtp.server import Edge, EdgeConfig
    from mailcore.adapters.memory.directory import InMemoryAccountDirectory
    from mailcore.adapters.memory.store import InMemoryMessageStore
    from mailcore.services.recipients import HostedDomains

    executor = ThreadPoolExecutor(max_workers=64)
    writer: Any
    if kind == "edge-s3":
        from mailcore.adapters.aws.clients import credentials, s3_client
        from mailcore.adapters.aws.s3_writer import S3MessageWriter

        writer = S3MessageWriter(s3_client(), "bench", credentials())
    elif kind == "edge-s3-thread":
        from mailcore.adapters.aws.clients import s3_client
        from mailcore.adapters.aws.s3_store import S3RawMessageStore

        writer = OffLoopWriter(S3RawMessageStore(s3_client(), "bench"), executor)
    else:
        writer = OffLoopWriter(
            InMemoryMessageStore(latency_seconds=0.05 if kind == "edge-50ms" else 0.0), executor)
    directory = CachingAccountDirectory(InMemoryAccountDirectory({"bob@hamburger.edu": "x"}))
    config = EdgeConfig(hostname="bench", host="127.0.0.1", mx_port=port, submission_port=None,
                        health_port=None, max_connections_per_client=1000)
    handler = EdgeHandler(writer, directory, HostedDomains.of(["hamburger.edu"]), "bench",
                          executor)
    await Edge(config, handler, None, None).start()
    await asyncio.Event().wait()


# -- a minimal S3 endpoint (run as: python bench/edge_throughput.py --s3 PORT) -------------
async def _answer_s3(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """HTTP/1.1 with keep-alive: reads each request whole and answers 200 at once."""
    try:
        await _answer_requests(reader, writer)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()  # the client went: the end of this connection, not an error


async def _answer_requests(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while head := await reader.readuntil(b"\r\n\r\n"):
        headers = {line.split(b":", 1)[0].strip().lower(): line.split(b":", 1)[1].strip()
                   for line in head.split(b"\r\n")[1:] if b":" in line}
        if headers.get(b"expect", b"").lower() == b"100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await reader.readexactly(int(headers.get(b"content-length", b"0")))
        writer.write(b'HTTP/1.1 200 OK\r\nETag: "bench"\r\nContent-Length: 0\r\n\r\n')
        await writer.drain()


async def _serve_s3(port: int) -> None:
    server = await asyncio.start_server(_answer_s3, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


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


async def _session(port: int, messages: int, latencies: list[float],
                   message: bytes = MESSAGE) -> None:
    reader, writer = await open_session(port)
    for _ in range(messages):
        await begin_message(reader, writer)
        writer.write(message + b".\r\n")
        started = time.perf_counter()
        line = await reply(reader)
        latencies.append(time.perf_counter() - started)
        if not line.startswith(b"250"):
            raise RuntimeError(f"not accepted: {line!r}")
    writer.write(b"QUIT\r\n")
    await reply(reader)
    writer.close()


async def drive(port: int, sessions: int, messages: int, message: bytes = MESSAGE
                ) -> tuple[float, list[float]]:
    """`sessions` at once, each sending `messages` messages: the time it took, and each
    message's wait for the reply to its data."""
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(_session(port, messages, latencies, message)
                           for _ in range(sessions)))
    return time.perf_counter() - started, latencies


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _measure(kind: str, sessions: int, messages: int) -> dict[str, float]:
    from mailpipe.local.launcher import free_ports

    port, s3_port = free_ports(2)
    environment = {**os.environ, "POWERTOOLS_LOG_LEVEL": "ERROR",
                   "AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
                   "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                   "AWS_DEFAULT_REGION": "us-east-1"}
    s3 = subprocess.Popen([sys.executable, __file__, "--s3", str(s3_port)], cwd=ROOT,
                          env=environment) if kind.startswith("edge-s3") else None
    server = subprocess.Popen([sys.executable, __file__, "--serve", kind, str(port)], cwd=ROOT,
                              env=environment)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                asyncio.run(drive(port, 1, 1))  # also warms the server up
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        elapsed, latencies = asyncio.run(drive(port, sessions, messages))
        ordered = sorted(latencies)
        return {
            "rate": len(latencies) / elapsed,
            "p50": statistics.median(ordered) * 1000,
            "p99": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000,
            "rss": _peak_rss_mib(server.pid),
        }
    finally:
        for process in (server, s3):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"))
    parser.add_argument("--s3", type=int, metavar="PORT")
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--messages-per-session", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each server, interleaved; the median run is reported")
    arguments = parser.parse_args()
    if arguments.serve:
        asyncio.run(_serve(arguments.serve[0], int(arguments.serve[1])))
        return
    if arguments.s3:
        asyncio.run(_serve_s3(arguments.s3))
        return
    sessions, messages = arguments.sessions, arguments.messages_per_session
    print(f"{sessions} sessions x {messages} messages of {len(MESSAGE)} bytes, "
          f"{os.cpu_count()} cores, median of {arguments.rounds} interleaved rounds")
    kinds = ("bare", "edge-0ms", "edge-50ms", "edge-s3", "edge-s3-thread")
    # Interleaved rounds, so that noise from the rest of the machine hits all of them alike.
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    for _ in range(arguments.rounds):
        for kind in kinds:
            runs[kind].append(_measure(kind, sessions, messages))
    results = {kind: sorted(runs[kind], key=lambda run: run["rate"])[len(runs[kind]) // 2]
               for kind in kinds}
    baseline = results["bare"]["rate"]
    labels = {"bare": "(a) bare aiosmtpd, stores nothing", "edge-0ms": "(b) edge, 0 ms store",
              "edge-50ms": "(c) edge, 50 ms store",
              "edge-s3": "(d) edge, its S3 writer, instant S3",
              "edge-s3-thread": "(e) as (d), botocore in a thread (before)"}
    for kind, figures in results.items():
        ratio = figures["rate"] / baseline
        print(f"{labels[kind]:42} {figures['rate']:7.0f} msg/s  ratio {ratio:.2f}"
              f"  p50 {figures['p50']:6.1f} ms  p99 {figures['p99']:6.1f} ms"
              f"  peak RSS {figures['rss']:.0f} MiB")
    print("targets: (b) >= 0.5 x (a): "
          f"{'met' if results['edge-0ms']['rate'] >= 0.5 * baseline else 'NOT met'}; "
          "(c) >= 0.3 x (a): "
          f"{'met' if results['edge-50ms']['rate'] >= 0.3 * baseline else 'NOT met'}; "
          "(d) >= 0.5 x (a): "
          f"{'met' if results['edge-s3']['rate'] >= 0.5 * baseline else 'NOT met'}")


if __name__ == "__main__":
    main()
