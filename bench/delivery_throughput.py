"""Delivery throughput to Postfix's smtp-sink, and connections used, 100 messages to one domain.

The deliver path's SMTP client (mailcore.adapters.smtp_client) sends N messages of 10 KiB
in batches of 10, one connection pool per batch as one Lambda invocation has. Baseline in
the same run: the same client with a new connection for every message.

    python bench/delivery_throughput.py [--messages 100]
"""

from __future__ import annotations

import argparse
import math
import shutil
import socket
import subprocess
import time

from mailcore.adapters.smtp_client import SmtpClientPool
from mailcore.ports import NextHop
from mailpipe.local.launcher import free_port

MESSAGE = (b"From: alice@crepes.fr\r\nTo: bob@hamburger.test\r\nSubject: bench\r\n\r\n"
           + (b"x" * 78 + b"\r\n") * 128)


def _send(port: int, messages: int, per_pool: int) -> tuple[float, int]:
    hops = [NextHop("127.0.0.1", port, operator_named=True)]
    connections = 0
    started = time.perf_counter()
    for first in range(0, messages, per_pool):
        pool = SmtpClientPool("bench.test")
        for _ in range(first, min(messages, first + per_pool)):
            [reply] = pool.send(hops, "alice@crepes.fr", ("bob@hamburger.test",), MESSAGE)
            assert reply.code == 250, reply
        pool.close()
        connections += pool.connections_opened
    return messages / (time.perf_counter() - started), connections


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--batch", type=int, default=10)
    arguments = parser.parse_args()
    port = free_port()
    sink = subprocess.Popen([shutil.which("smtp-sink") or "smtp-sink", "-u", "nobody",
                             f"127.0.0.1:{port}", "100"])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        rate, connections = _send(port, arguments.messages, arguments.batch)
        baseline_rate, baseline_connections = _send(port, arguments.messages, 1)
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    limit = math.ceil(arguments.messages / arguments.batch)
    print(f"{arguments.messages} messages of {len(MESSAGE)} bytes to one domain (smtp-sink)")
    print(f"persistent connections per batch of {arguments.batch}: {rate:.0f} msg/s, "
          f"{connections} connections (limit ceil(N/batch) = {limit}: "
          f"{'met' if connections <= limit else 'NOT met'})")
    print(f"baseline, a connection per message:  {baseline_rate:.0f} msg/s, "
          f"{baseline_connections} connections")
    print(f"ratio persistent / baseline: {rate / baseline_rate:.2f}")


if __name__ == "__main__":
    main()
