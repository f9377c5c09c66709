"""The MX's greeting latency while an IMAP client runs the slowest LIST and SEARCH there
are, beside the same with no IMAP load, in one run.

    python bench/imap_mx_latency.py [--connections 300] [--messages 200] [--fetchers 20]
        [--views filed|lazy] [--edge together|apart]

One child process serves the SMTP edge's MX port and IMAP on one event loop and one
thread pool, as the edge does (in-memory mailboxes and store: the figures are the
edge's own work). IMAP holds folders named with the longest name there is ("a" * 200)
and an INBOX of `--messages` messages of about 100 KiB each (quoted-printable UTF-8
text, encoded-word headers, attachments). The client opens `--connections` connections
to the MX one after another and times each until the 220 greeting, in three phases:
  - no IMAP load (the baseline);
  - a client repeating LIST "" "*a*a*a*a*a*a*a*a*a*a*b" (pymap's regular expression
    took 14 s with five wildcards over one such name, each further one about 40 times
    more, the loop frozen meanwhile);
  - a client repeating SEARCH TEXT over every message (each decoded whole; no message
    matches);
  - `--fetchers` clients each repeating FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE) over a
    folder of `--messages` ordinary messages of about 27 KB (bench/direct_filing.py), what
    a mail client asks to show a folder; the folder filed straight through the mailbox port
    with each message's IMAP view as filing keeps it (`--views lazy`: without, as for mail
    filed before views existed). Target (issue 27): greeting p95 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from direct_filing import file_directly, ordinary_message

ACCOUNT, PASSWORD = "bob@hamburger.edu", "bob-password"
HOSTILE_LIST = b'LIST "" "*a*a*a*a*a*a*a*a*a*a*b"'
_NOWHERE = "nowhere \u00e9".encode()
HEAVY_SEARCH = (b"SEARCH CHARSET UTF-8 OR TEXT {%d}\r\n%b FROM {%d}\r\n%b"
                % (len(_NOWHERE), _NOWHERE, len(_NOWHERE), _NOWHERE))
OPENED = "Opened"  # the folder of ordinary messages the fetching clients open
STRUCTURE_FETCH = b"FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)"


def _message(number: int) -> bytes:
    line = "Caf=C3=A9 cr=C3=A8me br=C3=BBl=C3=A9e, d=C3=A9j=C3=A0 vu, na=C3=AFve =\r\n"
    return (f"From: =?utf-8?q?Andr=C3=A9_{number}?= <andre{number}@crepes.fr>\r\n"
            f"To: bob@hamburger.edu\r\nSubject: =?utf-8?b?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?= "
            f"{number}\r\nDate: Fri, 27 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + line * 1300
            + "\r\n--b\r\nContent-Type: application/pdf\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" + "JVBERi0xLjQK" * 1000
            + "\r\n--b--\r\n").encode()


def _serve(mx_port: int, ready: multiprocessing.Queue, folder: str, opened: int,
           views: str, apart: bool) -> None:
    asyncio.run(_serve_both(mx_port, ready, Path(folder), opened, views, apart))


def _serve_mx(mx_port: int, started: multiprocessing.Queue) -> None:
    """The MX alone, in a process of its own, as the edge runs it (issue 25)."""
    async def serve() -> None:
        from concurrent.futures import ThreadPoolExecutor

        from edge.smtp.accounts import CachingAccountDirectory
        from edge.smtp.handler import EdgeHandler, OffLoopWriter
        from edge.smtp.server import Edge, EdgeConfig
        from mailcore.adapters.memory.directory import InMemoryAccountDirectory
        from mailcore.adapters.memory.store import InMemoryMessageStore
        from mailcore.services.recipients import HostedDomains

        executor = ThreadPoolExecutor(max_workers=16)
        config = EdgeConfig(hostname="bench", host="127.0.0.1", mx_port=mx_port,
                            submission_port=None, health_port=None,
                            max_connections_per_client=100_000)
        accounts = CachingAccountDirectory(InMemoryAccountDirectory({ACCOUNT: PASSWORD}))
        await Edge(config, EdgeHandler(OffLoopWriter(InMemoryMessageStore(), executor),
                                       accounts, HostedDomains.of(["hamburger.edu"]), "bench",
                                       executor), None, None).start()
        started.put(True)
        await asyncio.Event().wait()

    asyncio.run(serve())


async def _serve_both(mx_port: int, ready: multiprocessing.Queue, folder: Path, opened: int,
                      views: str, apart: bool) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from edge.imap.backend.storage import Blocking, ImapStorage
    from edge.imap.config import ImapLimits
    from edge.imap.listeners import start_imap
    from edge.smtp.accounts import CachingAccountDirectory
    from edge.smtp.handler import EdgeHandler, OffLoopWriter
    from edge.smtp.server import Edge, EdgeConfig
    from edge.tls import ensure_self_signed, server_context
    from mailcore.adapters.memory.directory import InMemoryAccountDirectory
    from mailcore.adapters.memory.login_throttle import InMemoryLoginThrottle
    from mailcore.adapters.memory.mailbox import InMemoryMailboxRepository
    from mailcore.adapters.memory.store import InMemoryMessageStore
    from mailcore.adapters.memory.views import InMemoryImapViews
    from mailcore.services.recipients import HostedDomains

    executor = ThreadPoolExecutor(max_workers=16)  # one pool for both, as in the edge
    accounts = InMemoryAccountDirectory({ACCOUNT: PASSWORD})
    config = EdgeConfig(hostname="bench", host="127.0.0.1", mx_port=mx_port,
                        submission_port=None, health_port=None,
                        max_connections_per_client=100_000)
    handler = EdgeHandler(OffLoopWriter(InMemoryMessageStore(), executor),
                          CachingAccountDirectory(accounts), HostedDomains.of(["hamburger.edu"]),
                          "bench", executor)
    if not apart:
        await Edge(config, handler, None, None).start()
    mailboxes = InMemoryMailboxRepository()
    storage = ImapStorage(mailboxes=mailboxes, store=InMemoryMessageStore(),
                          references=mailboxes.references, directory=accounts,
                          throttle=InMemoryLoginThrottle(), blocking=Blocking(executor),
                          views=InMemoryImapViews(mailboxes))
    file_directly(storage, ACCOUNT, opened, lambda number: ordinary_message(number, ACCOUNT),
                  views=storage.views if views == "filed" else None,
                  folder=mailboxes.create_folder(ACCOUNT, OPENED).id)
    cert_file, key_file = ensure_self_signed(folder, "bench")
    listeners = await start_imap(storage, "bench", "127.0.0.1", None, 0,
                                 server_context(cert_file, key_file),
                                 ImapLimits(per_client=1000, per_account=1000))
    ready.put((listeners.ports["imaps"], str(cert_file)))
    await asyncio.Event().wait()


def _greeting_seconds(port: int) -> float:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as connection:
        received = b""
        while b"\n" not in received:
            received += connection.recv(1024)
        elapsed = time.perf_counter() - started
        connection.sendall(b"QUIT\r\n")
    assert received.startswith(b"220"), received
    return elapsed


def _phase(mx_port: int, connections: int, loads: list[tuple[object, bytes]]
           ) -> tuple[list[float], list[float]]:
    """Greeting latencies, and the IMAP commands' own durations while they were taken (each
    load a client repeating its command on a thread of its own)."""
    stop = threading.Event()
    durations: list[float] = []

    def repeat(client: object, command: bytes) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            answer = client.command(command)  # type: ignore[attr-defined]
            durations.append(time.perf_counter() - started)
            assert answer.status == b"OK", answer

    workers = [threading.Thread(target=repeat, args=load) for load in loads]
    for worker in workers:
        worker.start()
    if workers:
        time.sleep(0.5)
    latencies = [_greeting_seconds(mx_port) for _ in range(connections)]
    stop.set()
    for worker in workers:
        worker.join()
    return latencies, durations


def main() -> None:
    import ssl

    from mailpipe.local.launcher import free_port
    from tests.raw_imap import RawImap

    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--fetchers", type=int, default=20)
    parser.add_argument("--views", choices=("filed", "lazy"), default="filed")
    parser.add_argument("--edge", choices=("together", "apart"), default="together",
                        help="SMTP and IMAP in one process (before issue 25), or each in "
                             "its own, as the edge runs them")
    arguments = parser.parse_args()

    mx_port = free_port()
    ready: multiprocessing.Queue = multiprocessing.Queue()
    apart = arguments.edge == "apart"
    server = multiprocessing.Process(target=_serve,
                                     args=(mx_port, ready, tempfile.mkdtemp(),
                                           arguments.messages, arguments.views, apart),
                                     daemon=True)
    server.start()
    if apart:
        mx_started: multiprocessing.Queue = multiprocessing.Queue()
        mx = multiprocessing.Process(target=_serve_mx, args=(mx_port, mx_started), daemon=True)
        mx.start()
        mx_started.get(timeout=60)
    imaps_port, cert_file = ready.get(timeout=60)
    tls = ssl.create_default_context(cafile=cert_file)
    tls.check_hostname = False

    client = RawImap.connect(imaps_port, tls, timeout=600)
    client.login(ACCOUNT, PASSWORD)
    for name in ("a" * 200, "a" * 99 + "/" + "a" * 100, "a" * 150):
        assert client.command(b'CREATE "%s"' % name.encode()).status == b"OK"
    for number in range(arguments.messages):
        raw = _message(number)
        assert client.command(b"APPEND INBOX {%d}\r\n" % len(raw) + raw).status == b"OK"
    assert client.command(b"SELECT INBOX").status == b"OK"
    size = len(_message(0)) * arguments.messages

    fetchers = []
    for _ in range(arguments.fetchers):
        fetcher = RawImap.connect(imaps_port, tls, timeout=600)
        fetcher.login(ACCOUNT, PASSWORD)
        assert fetcher.command(b"EXAMINE %s" % OPENED.encode()).status == b"OK"
        fetchers.append(fetcher)
    phases: list[tuple[str, list[tuple[object, bytes]]]] = [
        ("no IMAP load (baseline)", []),
        (f"LIST {HOSTILE_LIST[8:].decode()} in a loop", [(client, HOSTILE_LIST)]),
        (f"SEARCH TEXT over {arguments.messages} messages "
         f"({size / 2**20:.0f} MiB) in a loop", [(client, HEAVY_SEARCH)]),
        (f"{arguments.fetchers} clients: {STRUCTURE_FETCH.decode()} over "
         f"{arguments.messages} 27 KB messages ({arguments.views} views) in a loop",
         [(fetcher, STRUCTURE_FETCH) for fetcher in fetchers])]
    print(f"MX greeting latency over {arguments.connections} connections each, SMTP and "
          + ("IMAP each in its own process, as the edge runs them" if apart
             else "IMAP on one event loop and thread pool"))
    print("| IMAP load | greeting median | greeting p95 | greeting max "
          "| IMAP commands answered | IMAP command median |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, load in phases:
        latencies, durations = _phase(mx_port, arguments.connections, load)
        cuts = statistics.quantiles(latencies, n=20)
        command = (f"{statistics.median(durations) * 1000:.0f} ms" if durations else "-")
        print(f"| {name} | {statistics.median(latencies) * 1000:.2f} ms "
              f"| {cuts[18] * 1000:.2f} ms | {max(latencies) * 1000:.2f} ms "
              f"| {len(durations) if load else '-'} | {command} |")
    print("Target (issue 27): greeting p95 under 50 ms while the clients fetch the structure.")
    client.close()
    for fetcher in fetchers:
        fetcher.close()
    server.terminate()
    if apart:
        mx.terminate()


if __name__ == "__main__":
    main()
