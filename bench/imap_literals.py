"""IMAP literals: the server's memory while connections send the largest literals they can.

    python bench/imap_literals.py [--connections 20] [--mib 24]

Each case starts the IMAP server (both listeners, in-memory mailboxes, default limits) in
a fresh process of its own and reads its resident memory (VmRSS) once every connection is
done, and its peak (VmHWM):
  - baseline: the connections open on port 143, greeted, and idle;
  - before login: each sends `a LOGIN {N+}` (RFC 7888's LITERAL+, N = --mib MiB) on port
    143, then the literal's bytes for as long as the server takes them;
  - after login: each logs in on port 993 and sends `a APPEND INBOX {N+}` the same way
    (the literal budget decides how many are let in).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHUNK = 1024 * 1024
ACCOUNT, PASSWORD = "bob@hamburger.edu", "bob-password"


def _serve() -> None:
    from edge.imap.config import ImapLimits
    from tests.imap_support import running_imap

    # One client address for every connection here; the per-address limit (20) stays.
    with running_imap(limits=ImapLimits(per_account=1000)) as imap:
        print(json.dumps({"imap": imap.imap_port, "imaps": imap.imaps_port}), flush=True)
        sys.stdin.read()  # until the benchmark closes it


def _status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


async def _answer(reader: asyncio.StreamReader, tag: bytes) -> bytes:
    while line := await reader.readline():
        if line.startswith(tag + b" "):
            return line
    raise ConnectionError("closed before the answer")


async def _connect(port: int, tls: ssl.SSLContext | None, login: bool,
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
    await reader.readline()  # the greeting
    if login:
        writer.write(b"l LOGIN %s %s\r\n" % (ACCOUNT.encode(), PASSWORD.encode()))
        answer = await _answer(reader, b"l")
        assert answer.startswith(b"l OK"), answer
    return reader, writer


async def _send_literal(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        line: bytes, size: int) -> tuple[int, bytes]:
    """Writes `line` and then up to `size` bytes while the server takes them: the bytes
    written (the kernel's buffers take some after the server stops reading) and the
    server's answers, read meanwhile (a LITERAL+ client does not wait for them)."""
    answers: list[bytes] = []

    async def read_answers() -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while (received := await reader.readline()) and not received.startswith(b"a "):
                answers.append(received.strip())
            answers.append(received.strip())

    reading = asyncio.create_task(read_answers())
    written = 0
    writer.write(line)
    chunk = b"x" * CHUNK
    with contextlib.suppress(ConnectionError, TimeoutError, ssl.SSLError):
        while written < size:  # as an attacker would: whatever the answer
            piece = chunk[:size - written]
            writer.write(piece)
            await asyncio.wait_for(writer.drain(), 10)
            written += len(piece)
        writer.write(b"\r\n")
        await writer.drain()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reading, 10)
    return written, b" / ".join(answer for answer in answers if answer)


async def _case(kind: str, ports: dict[str, int], connections: int, size: int,
                tls: ssl.SSLContext) -> tuple[list[tuple[int, bytes]], list[asyncio.StreamWriter]]:
    if kind == "baseline":
        opened = [await _connect(ports["imap"], None, login=False) for _ in range(connections)]
        await asyncio.sleep(1)
        return [(0, b"idle")] * connections, [writer for _, writer in opened]
    if kind == "before login":
        opened = [await _connect(ports["imap"], None, login=False) for _ in range(connections)]
        line = b"a LOGIN {%d+}\r\n" % size
    else:
        opened = [await _connect(ports["imaps"], tls, login=True) for _ in range(connections)]
        line = b"a APPEND INBOX {%d+}\r\n" % size
    results = await asyncio.gather(*(_send_literal(reader, writer, line, size)
                                     for reader, writer in opened))
    return list(results), [writer for _, writer in opened]


def _measure(kind: str, connections: int, size: int) -> tuple[float, float, float, str]:
    server = subprocess.Popen([sys.executable, __file__, "--serve"], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "POWERTOOLS_LOG_LEVEL": "ERROR"})
    try:
        assert server.stdout is not None
        ports = json.loads(server.stdout.readline())
        time.sleep(0.5)
        idle = _status_mib(server.pid, "VmRSS")
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE

        async def run() -> tuple[list[tuple[int, bytes]], float]:
            results, writers = await _case(kind, ports, connections, size, tls)
            rss = _status_mib(server.pid, "VmRSS")  # all connections still open
            for writer in writers:
                writer.close()
            return results, rss

        results, rss = asyncio.run(run())
        peak = _status_mib(server.pid, "VmHWM")
        sent = sum(written for written, _ in results) / CHUNK
        answers: dict[str, int] = {}
        for _, last in results:
            text = last.decode(errors="replace")[:90] or "(closed)"
            answers[text] = answers.get(text, 0) + 1
        summary = f"sent {sent:.0f} MiB; " + "; ".join(
            f"{count} x {text}" for text, count in sorted(answers.items()))
        return idle, rss, peak, summary
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--mib", type=int, default=24)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        _serve()
        return
    size = arguments.mib * 1024 * 1024
    print(f"{arguments.connections} connections, literals of {arguments.mib} MiB")
    print(f"{'case':<14} {'idle MiB':>9} {'RSS MiB':>8} {'peak MiB':>9} {'growth MiB':>11}  "
          "what the clients sent and were answered")
    for kind in ("baseline", "before login", "after login"):
        idle, rss, peak, summary = _measure(kind, arguments.connections, size)
        print(f"{kind:<14} {idle:9.1f} {rss:8.1f} {peak:9.1f} {peak - idle:11.1f}  {summary}",
              flush=True)


if __name__ == "__main__":
    main()
