"""A real edge (both listeners) on 127.0.0.1 in a background event loop, for tests."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edge.smtp.accounts import CachingAccountDirectory
from edge.smtp.handler import EdgeHandler, OffLoopWriter, SubmissionHandler
from edge.smtp.inbound import InboundVerifier
from edge.smtp.junk_signals import EdgeSignals
from edge.smtp.server import Edge, EdgeConfig
from edge.tls import ensure_self_signed, server_context
from mailcore.adapters.memory.directory import InMemoryAccountDirectory
from mailcore.adapters.memory.login_throttle import InMemoryLoginThrottle
from mailcore.adapters.memory.sending_limit import InMemorySendingLimit
from mailcore.adapters.memory.signing_keys import InMemorySigningKeys
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.ports import (
    AccountDirectory,
    LoginThrottle,
    MessageWriter,
    RawMessageStore,
    SendingLimit,
    SigningKeys,
    Suppressions,
)
from mailcore.services.recipients import HostedDomains

ACCOUNTS = {"bob@hamburger.edu": "bob-password", "carol@hamburger.edu": "carol-password"}


@dataclass
class RunningEdge:
    edge: Edge
    loop: asyncio.AbstractEventLoop
    store: RawMessageStore
    directory: InMemoryAccountDirectory
    cert_file: Path

    @property
    def mx_port(self) -> int:
        return self.edge.bound_ports["mx"]

    @property
    def submission_port(self) -> int:
        return self.edge.bound_ports["submission"]

    @property
    def health_port(self) -> int:
        return self.edge.bound_ports["health"]

    def client_tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.cert_file))
        context.check_hostname = False
        return context

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.edge.stop(), self.loop).result(timeout=60)


async def _cancel_sessions() -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@contextmanager
def running_edge(store: RawMessageStore | None = None, hosted: tuple[str, ...] = ("hamburger.edu",),
                 accounts: dict[str, str] | None = None,
                 sending_limit: SendingLimit | None = None,
                 throttle: LoginThrottle | None = None, writer: MessageWriter | None = None,
                 directory: AccountDirectory | None = None,
                 signing_keys: SigningKeys | None = None,
                 verifier: InboundVerifier | None = None,
                 suppressions: Suppressions | None = None,
                 signals: EdgeSignals | None = None,
                 **overrides: object) -> Iterator[RunningEdge]:
    """An edge that stores through `writer`, else through `store` in a thread."""
    store = store if store is not None else InMemoryMessageStore()
    memory_directory = InMemoryAccountDirectory(ACCOUNTS if accounts is None else accounts)
    with tempfile.TemporaryDirectory() as folder:
        cert_file, key_file = ensure_self_signed(Path(folder), "hamburger.edu")
        config = EdgeConfig(hostname="hamburger.edu", host="127.0.0.1", mx_port=0,
                            submission_port=0, health_port=0,
                            grace_seconds=5)
        config = dataclasses.replace(config, **overrides)  # type: ignore[arg-type]
        executor = ThreadPoolExecutor(max_workers=16)
        cached = CachingAccountDirectory(directory or memory_directory)
        domains = HostedDomains.of(hosted)
        writer = writer if writer is not None else OffLoopWriter(store, executor)
        mx = EdgeHandler(writer, cached, domains, config.hostname, executor,
                         config.max_recipients, verifier=verifier, signals=signals)
        submission = SubmissionHandler(writer, cached, domains, config.hostname, executor,
                                       config.max_recipients,
                                       throttle=throttle or InMemoryLoginThrottle(),
                                       sending_limit=sending_limit or InMemorySendingLimit(),
                                       signing_keys=signing_keys or InMemorySigningKeys(),
                                       suppressions=suppressions)
        edge = Edge(config, mx, submission, server_context(cert_file, key_file))
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(edge.start(), loop).result(timeout=10)
        running = RunningEdge(edge, loop, store, memory_directory, cert_file)
        try:
            yield running
        finally:
            if not edge.registry.draining:
                running.stop()
            asyncio.run_coroutine_threadsafe(_cancel_sessions(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            executor.shutdown(wait=False)


class Wire:
    """A raw SMTP connection: what was sent is exactly what the server sees."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = self.socket.makefile("rb")

    def reply(self) -> list[bytes]:
        lines = []
        while True:
            line = self.reader.readline()
            if not line:
                raise ConnectionError("closed")
            lines.append(line.rstrip(b"\r\n"))
            if line[3:4] != b"-":
                return lines

    def send(self, data: bytes) -> None:
        self.socket.sendall(data)

    def command(self, line: bytes) -> list[bytes]:
        self.send(line + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.socket.close()

    def start_tls(self, context: ssl.SSLContext) -> None:
        """After the server's 220 to STARTTLS: the same connection, encrypted."""
        self.socket = context.wrap_socket(self.socket)
        self.reader = self.socket.makefile("rb")


def proxy_v2_header(source: str, port: int) -> bytes:
    """A PROXY protocol v2 header for a TCP/IPv4 client at source:port."""
    addresses = socket.inet_aton(source) + socket.inet_aton("127.0.0.1") + struct.pack(
        "!HH", port, 25)
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(addresses))
            + addresses)
