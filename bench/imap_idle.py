"""IMAP IDLE: storage reads per minute and server memory per idle connection.

    python bench/imap_idle.py [--clients 500] [--accounts 50] [--seconds 30]

The IMAP server runs in a child process on in-memory mailboxes that count the reads a
watcher makes (what DynamoDB would bill: one eventually consistent read of a folder's
MODSEQ per poll, 0.5 read request unit). Clients log in over TLS, select INBOX and
IDLE; they are spread over `--accounts` accounts, one Inbox each, so several clients of
one account share a folder as a phone and a laptop do. Printed beside the baseline of one
poll per connection (what a server that polls per connection would read), with the cost
of 1,000 idle clients a month at DynamoDB on-demand prices, and the server's memory per
idle connection beside a private Dovecot's (all its processes) with as many idle clients.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import ssl
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

READ_UNITS_PER_POLL = 0.5  # eventually consistent read of an item under 4 KB
PRICE_PER_MILLION_READ_UNITS = 0.125  # DynamoDB on-demand, us-east-1 (as bench/cost_model)
MINUTES_PER_MONTH = 30 * 24 * 60


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _server(accounts: int, ready: multiprocessing.Queue, commands: multiprocessing.Queue,
            certificate: Path) -> None:
    from edge.imap.config import ImapLimits
    from mailcore.adapters.memory.directory import InMemoryAccountDirectory
    from tests.functional.test_imap import CountingMailboxes
    from tests.imap_support import running_imap

    mailboxes = CountingMailboxes()
    directory = InMemoryAccountDirectory({f"user{n}@bench.test": "password"
                                          for n in range(accounts)})
    # Every client of the benchmark comes from 127.0.0.1: no per-address limit here.
    limits = ImapLimits(per_client=1_000_000, per_account=1_000_000)
    with running_imap(mailboxes=mailboxes, directory=directory, limits=limits) as imap:
        certificate.write_text(Path(imap.cert_file).read_text())
        ready.put(imap.imaps_port)
        while (command := commands.get()) != "stop":
            if command == "reads":
                ready.put(mailboxes.modseq_reads)


def _pss_kib(pids: list[int]) -> int:
    """Proportional set size: shared pages counted once across the processes."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    return total


def _idle_client(port: int, context: ssl.SSLContext, account: str,
                 password: str = "password") -> ssl.SSLSocket:
    connection = context.wrap_socket(socket.create_connection(("127.0.0.1", port)))
    reader = connection.makefile("rb")
    reader.readline()
    for tag, command in ((b"a", b"LOGIN %s %s" % (account.encode(), password.encode())),
                         (b"b", b"SELECT INBOX")):
        connection.sendall(tag + b" " + command + b"\r\n")
        while not (line := reader.readline()).startswith(tag + b" "):
            if not line:
                raise ConnectionError(f"closed during {command!r}")
    connection.sendall(b"c IDLE\r\n")
    assert reader.readline().startswith(b"+")
    return connection


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    arguments = parser.parse_args()

    certificate = Path(tempfile.mkdtemp()) / "cert.pem"  # the child's, for our TLS
    ready: multiprocessing.Queue = multiprocessing.Queue()
    commands: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=_server,
                                     args=(arguments.accounts, ready, commands, certificate))
    server.start()
    port = ready.get(timeout=60)
    assert server.pid is not None
    context = ssl.create_default_context(cafile=str(certificate))
    context.check_hostname = False
    time.sleep(1)
    rss_before = _rss_kib(server.pid)
    pss_before = _pss_kib([server.pid])
    clients = [_idle_client(port, context, f"user{n % arguments.accounts}@bench.test")
               for n in range(arguments.clients)]
    time.sleep(2)  # every watch has started polling
    commands.put("reads")
    reads_before = ready.get(timeout=30)
    time.sleep(arguments.seconds)
    commands.put("reads")
    reads_after = ready.get(timeout=30)
    rss_after = _rss_kib(server.pid)
    pss_after = _pss_kib([server.pid])
    for client in clients:
        client.close()
    commands.put("stop")
    server.join(timeout=30)

    minutes = arguments.seconds / 60
    measured = (reads_after - reads_before) / minutes
    from edge.imap.backend.idle import IDLE_POLL_SECONDS

    baseline = arguments.clients * 60 / IDLE_POLL_SECONDS  # one poll per connection

    def dollars_per_thousand(reads_per_minute: float) -> float:
        per_client = reads_per_minute / arguments.clients
        units = per_client * MINUTES_PER_MONTH * READ_UNITS_PER_POLL * 1000
        return units / 1e6 * PRICE_PER_MILLION_READ_UNITS

    print(f"{arguments.clients} idle clients on {arguments.accounts} folders, "
          f"poll every {IDLE_POLL_SECONDS:g} s, measured over {arguments.seconds:g} s")
    print(f"  {'':<28} {'reads/min':>10} {'per client':>11} {'$/1,000 clients/month':>22}")
    for name, rate in (("one poll per folder (this)", measured),
                       ("one poll per connection", baseline)):
        print(f"  {name:<28} {rate:10.0f} {rate / arguments.clients:11.1f} "
              f"{dollars_per_thousand(rate):22.2f}")
    print(f"  server RSS per idle connection: "
          f"{(rss_after - rss_before) / arguments.clients:.1f} KiB "
          f"({rss_before / 1024:.0f} MiB before, {rss_after / 1024:.0f} MiB with them)")
    dovecot_before, dovecot_after = _dovecot_memory(arguments.clients, arguments.accounts)
    print(f"\nmemory per idle connection (PSS: shared pages counted once), "
          f"{arguments.clients} clients, Dovecot measured in the same run")
    print("| server | before | with the clients | per idle connection |")
    print("|---|---:|---:|---:|")
    for name, before, after in (("Dovecot (all its processes)", dovecot_before,
                                 dovecot_after),
                                ("mailpipe (the edge process)", pss_before, pss_after)):
        print(f"| {name} | {before / 1024:.0f} MiB | {after / 1024:.0f} MiB "
              f"| {(after - before) / arguments.clients:.0f} KiB |")


def _dovecot_memory(clients: int, accounts: int) -> tuple[int, int]:
    """Dovecot as Debian configures it (a login process and an imap process per client,
    the login one doing the TLS), with its process and per-user limits raised so that
    every client is let in."""
    from edge.tls import ensure_self_signed
    from tests.dovecot_support import PASSWORD, private_dovecot

    folder = Path(tempfile.mkdtemp())
    cert_file, key_file = ensure_self_signed(folder, "localhost")
    context = ssl.create_default_context(cafile=str(cert_file))
    context.check_hostname = False
    limits = (f"default_process_limit = {clients + 100}\n"
              f"default_client_limit = {4 * clients + 100}\n"
              f"protocol imap {{\n  mail_max_userip_connections = {clients}\n}}\n")
    with private_dovecot((cert_file, key_file), limits) as dovecot:
        time.sleep(1)
        before = _pss_kib(dovecot.pids())
        connections = [_idle_client(dovecot.imaps_port, context,
                                    f"user{n % accounts}@bench.test", PASSWORD)
                       for n in range(clients)]
        time.sleep(2)
        after = _pss_kib(dovecot.pids())
        for connection in connections:
            connection.close()
    return before, after

if __name__ == "__main__":
    main()
