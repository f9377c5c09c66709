"""Edge memory per transaction: peak RSS on 25 MiB messages and on a blank-line flood.

Each case starts a fresh server process, sends over loopback, and reads the process's
peak RSS (VmHWM) against its RSS when idle, beside bare aiosmtpd (whose DATA reader the
edge replaced) on the same bytes in the same run. Both servers discard what they receive,
so the figures are what receiving costs, not what storing does.
  - one 25 MiB message (lines of 78 octets, as base64 attachments are sent),
  - five 25 MiB messages at once, over five sessions,
  - a 20 MiB flood of empty lines (2 octets each) in one message.

    python bench/edge_memory.py [--mib 25]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from edge_throughput import begin_message, open_session, reply

ROOT = Path(__file__).resolve().parents[1]
HEADER = b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: memory\r\n\r\n"
LIMIT = 26 * 1024 * 1024  # both servers' SIZE; the messages stay under it


class BareHandler:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


class DiscardingStore:
    """The edge's RawMessageStore, minus the storing."""

    def put(self, message_id, raw, envelope):
        # Imported here: the bare server's process never loads mailcore.
        from mailcore.s3_keys import message_key

        return message_key(message_id)


async def _serve(kind: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    if kind == "bare":
        from aiosmtpd.smtp import SMTP

        server = await loop.create_server(
            lambda: SMTP(BareHandler(), hostname="bench", data_size_limit=LIMIT),
            host="127.0.0.1", port=port)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()
        return
    else:
        from edge.smtp.accounts import CachingAccountDirectory
        from edge.smtp.handler import EdgeHandler, OffLoopWriter
        from edge.smtp.server import Edge, EdgeConfig
        from mailcore.adapters.memory.directory import InMemoryAccountDirectory
        from mailcore.services.recipients import HostedDomains

        directory = CachingAccountDirectory(InMemoryAccountDirectory({"bob@hamburger.edu": "x"}))
        config = EdgeConfig(hostname="bench", host="127.0.0.1", mx_port=port,
                            submission_port=None, health_port=None, max_message_size=LIMIT)
        executor = ThreadPoolExecutor(max_workers=8)
        handler = EdgeHandler(OffLoopWriter(DiscardingStore(), executor), directory,
                              HostedDomains.of(["hamburger.edu"]), "bench", executor)
        await Edge(config, handler, None, None).start()
        print("ready", flush=True)
        await asyncio.Event().wait()


async def _send(port: int, body: bytes) -> bytes:
    reader, writer = await open_session(port)
    await begin_message(reader, writer)
    view = memoryview(body)
    for start in range(0, len(body), 1024 * 1024):
        writer.write(view[start:start + 1024 * 1024])
        await writer.drain()
    writer.write(b".\r\n")
    answer = await reply(reader)
    writer.close()
    return answer


def _rss_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _measure(kind: str, bodies: list[bytes]) -> tuple[float, float, str]:
    from mailpipe.local.launcher import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", kind, str(port)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "POWERTOOLS_LOG_LEVEL": "ERROR"})
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        idle = _rss_mib(server.pid, "VmRSS")

        async def all_at_once() -> list[bytes]:
            return list(await asyncio.gather(*(_send(port, body) for body in bodies)))

        answers = asyncio.run(all_at_once())
        peak = _rss_mib(server.pid, "VmHWM")
        codes = ",".join(sorted({answer[:3].decode() for answer in answers}))
        return idle, peak, codes
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=25)
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        asyncio.run(_serve(arguments.serve[0], int(arguments.serve[1])))
        return
    size = arguments.mib * 1024 * 1024 - 64 * 1024  # under the SIZE limit with the header
    message = HEADER + (b"x" * 76 + b"\r\n") * (size // 78)
    flood = HEADER + b"\r\n" * (20 * 1024 * 1024 // 2)
    cases = [(f"one {arguments.mib} MiB message", [message]),
             (f"five {arguments.mib} MiB messages at once", [message] * 5),
             ("20 MiB of empty lines", [flood])]
    print(f"{'case':<32} {'server':<14} {'idle MiB':>9} {'peak MiB':>9} {'growth MiB':>11} "
          f"{'x sent':>7} reply")
    for title, bodies in cases:
        sent = sum(len(body) for body in bodies) / (1024 * 1024)
        for kind, label in (("bare", "bare aiosmtpd"), ("edge", "mailpipe edge")):
            idle, peak, codes = _measure(kind, bodies)
            growth = peak - idle
            print(f"{title:<32} {label:<14} {idle:9.1f} {peak:9.1f} {growth:11.1f} "
                  f"{growth / sent:7.2f} {codes}", flush=True)


if __name__ == "__main__":
    main()
