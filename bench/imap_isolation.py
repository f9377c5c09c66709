"""MX greeting latency while IMAP is at its worst, under `mailpipe up` (IMAP in its own
process, issue 25 item 7).

    python bench/imap_isolation.py [--seconds 10] [--listers 2]

Phases, in one run, each `--seconds` of MX connections one after another, 10 ms apart
(connect, read the 220 greeting, QUIT), p50 / p99 / max printed:
  baseline   IMAP idle
  slow LIST  `--listers` IMAP clients each running `LIST "" "*a*a*a*a*b"` over a
             200-character folder name again and again (the slowest LIST of issue 25)
  frozen     the IMAP process stopped with SIGSTOP (an event loop that never comes back)
Beside them, the IMAP process's RSS and CPU seconds during the slow LIST phase, which
show that IMAP was busy; then the IMAP process's peak RSS across one 20 MiB APPEND (what
its container's memory limit must allow), and both processes' RSS.
"""

from __future__ import annotations

import argparse
import imaplib
import json
import os
import signal
import socket
import ssl
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ACCOUNT, PASSWORD = "bob@hamburger.edu", "bob-password"
FOLDER = "a" * 199 + "c"  # no "b": every way to place the pattern's four "a"s is tried
PATTERN = "*a*a*a*a*b"
APPEND_MIB = 20


def _greeting_ms(port: int) -> float:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        reader = connection.makefile("rb")
        line = reader.readline()
        elapsed = (time.perf_counter() - started) * 1000
        assert line.startswith(b"220"), line
        connection.sendall(b"QUIT\r\n")
        reader.readline()
    return elapsed


def _phase(port: int, seconds: float) -> str:
    times = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        times.append(_greeting_ms(port))
        time.sleep(0.01)
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return (f"{len(times):4} greetings  p50 {statistics.median(times):6.1f} ms  "
            f"p99 {p99:6.1f} ms  max {times[-1]:6.1f} ms")


def _proc(pid: int) -> tuple[float, float]:
    """(RSS in MiB, CPU seconds so far) of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines()
               if line.startswith("VmRSS:")) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines()
                if line.startswith("VmHWM:")) / 1024


def _imap(stack: object, context: ssl.SSLContext) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL("127.0.0.1", stack.imaps_port,  # type: ignore[attr-defined]
                               ssl_context=context, timeout=600)
    client.login(ACCOUNT, PASSWORD)
    return client


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--listers", type=int, default=2)
    arguments = parser.parse_args()
    from mailpipe.local.launcher import start_stack
    from mailpipe.local.stack import processes_file

    stack = start_stack(["hamburger.edu"], {ACCOUNT: PASSWORD})
    try:
        pids = json.loads(processes_file(stack.state_dir, stack.aws_port).read_text())
        context = ssl.create_default_context(cafile=str(stack.state_dir / "tls" / "cert.pem"))
        context.check_hostname = False
        setup = _imap(stack, context)
        created = setup.create(FOLDER)[0]
        setup.logout()
        print(f"IMAP CREATE of a {len(FOLDER)}-character folder: {created}")
        print(f"baseline   {_phase(stack.smtp_port, arguments.seconds)}")

        stop = threading.Event()
        lists: list[float] = []

        def lister() -> None:
            client = _imap(stack, context)
            try:
                while not stop.is_set():
                    started = time.perf_counter()
                    client.list('""', PATTERN)
                    lists.append(time.perf_counter() - started)
            except (imaplib.IMAP4.abort, OSError):
                if not stop.is_set():  # the stack stopping ends the last LIST
                    raise

        _, cpu_before = _proc(pids["edge_imap"])
        threads = [threading.Thread(target=lister, daemon=True)
                   for _ in range(arguments.listers)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        busy = _phase(stack.smtp_port, arguments.seconds)
        imap_rss, cpu_after = _proc(pids["edge_imap"])
        stop.set()
        print(f"slow LIST  {busy}")
        longest = f"{max(lists):.1f} s" if lists else "none finished yet"
        print(f"           (IMAP: {arguments.listers} clients, {len(lists)} LISTs done, "
              f"longest {longest}, {cpu_after - cpu_before:.1f} CPU s meanwhile, "
              f"RSS {imap_rss:.0f} MiB)")
        os.kill(pids["edge_imap"], signal.SIGSTOP)
        try:
            print(f"frozen     {_phase(stack.smtp_port, arguments.seconds)}")
        finally:
            os.kill(pids["edge_imap"], signal.SIGCONT)
        # What the task definition's IMAP memory limit has to allow for (template.yaml).
        client = _imap(stack, context)
        message = (b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: big\r\n\r\n"
                   + (b"x" * 76 + b"\r\n") * (APPEND_MIB * 1024 * 1024 // 78))
        before = _peak_mib(pids["edge_imap"])
        appended = client.append("INBOX", None, None, message)[0]
        client.logout()
        print(f"IMAP APPEND of {APPEND_MIB} MiB: {appended}; IMAP peak RSS {before:.0f} -> "
              f"{_peak_mib(pids['edge_imap']):.0f} MiB")
        smtp_rss, _ = _proc(pids["edge_smtp"])
        print(f"SMTP process RSS {smtp_rss:.0f} MiB; IMAP process RSS "
              f"{_proc(pids['edge_imap'])[0]:.0f} MiB")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
