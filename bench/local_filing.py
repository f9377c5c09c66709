"""The local runtime's filing rate: messages from Postfix's smtp-source until all are filed.

Starts `mailpipe up` as a user would, sends N messages of 10 KiB with smtp-source over 20
sessions to one account, and reads the Inbox's total through the HTTP API every half
second until it holds all N. Printed: the time smtp-source took (every 250), the time
until the last message was filed, the filing rate (N over that time), the CPU each part
of the stack used per message (read from /proc when the last message was filed: steadier
from run to run than the rate, which moto's queueing makes swing by a fifth); and, for the
edge, its rate of 250s beside bare aiosmtpd's under the same smtp-source, measured just
before each stack (bare aiosmtpd stores nothing: bench/edge_throughput.py's case (a)).

The baseline is the same run against the local runtime as it was at another commit
(default: 60b1bc8, before issue 14), checked out into a temporary git worktree and started
from there with this environment's packages; so both figures come from the same machine in
the same run.

    python bench/local_filing.py [--messages 2000] [--baseline 60b1bc8 | --baseline none]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailpipe.local.launcher import free_ports, start_stack
from mailpipe.local.stack import ROOT
from tests.e2e.api_client import ApiClient, wait_until

ACCOUNT, PASSWORD = "bob@example.test", "bench-password"


def _smtp_source(messages: int, port: int) -> float:
    """Seconds until smtp-source had all its 250s."""
    started = time.perf_counter()
    result = subprocess.run(
        ["smtp-source", "-s", "20", "-m", str(messages), "-l", "10240",
         "-f", "alice@crepes.fr", "-t", ACCOUNT, "-M", "bench.test", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=3600, check=False)
    if result.returncode != 0:
        raise SystemExit(f"smtp-source failed: {result.stderr[-2000:]}")
    return time.perf_counter() - started


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def bare_accepted(messages: int) -> float:
    """Seconds bare aiosmtpd takes to say 250 to the same smtp-source."""
    (port,) = free_ports(1)
    server = subprocess.Popen([sys.executable, str(ROOT / "bench/edge_throughput.py"),
                               "--serve", "bare", str(port)], cwd=ROOT)
    try:
        wait_until(lambda: _listening(port), timeout=30, interval=0.1,
                   what="bare aiosmtpd listening")
        return _smtp_source(messages, port)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _process_tree_cpu(root: int) -> dict[str, float]:
    """CPU seconds so far of `root` and its descendants, by part of the stack."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue  # gone meanwhile
            children.setdefault(parent, []).append(int(entry.name))
    parts: dict[str, float] = {}
    waiting = [root]
    while waiting:
        pid = waiting.pop()
        waiting += children.get(pid, [])
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            seconds = _cpu_seconds(pid)
        except OSError:
            continue
        name = ("mailpipe up (moto, pollers, API)" if pid == root
                # `edge_child smtp|imap` since issue 26, `edge_child edge_smtp|edge_imap`
                # in baseline trees before it.
                else "edge" if b"smtp" in command or b"edge_smtp" in command
                else "IMAP" if b"imap" in command or b"edge_imap" in command
                # Baseline trees between issue 14 and issue 26 ran DynamoDB apart.
                else "moto's DynamoDB" if b"mailpipe.local.dynamodb_process" in command
                else "functions' workers")
        parts[name] = parts.get(name, 0.0) + seconds
    return parts


def measure(messages: int, tree: Path | None) -> tuple[float, float, dict[str, float]]:
    """(seconds until every 250, seconds until every message was filed, CPU seconds by
    part of the stack) for one stack."""
    environment = None
    if tree is not None:
        # The worktree's own modules first: the editable install points at this tree.
        environment = {"PYTHONPATH": os.pathsep.join(
            [str(tree), str(tree / "layers/mailcore/python")])}
    stack = start_stack(["example.test"], {ACCOUNT: PASSWORD}, environment=environment)
    try:
        client = ApiClient(stack, ACCOUNT, PASSWORD)
        before = _process_tree_cpu(stack.process.pid)
        started = time.perf_counter()
        accepted = _smtp_source(messages, stack.smtp_port)
        # Bounded: a run that loses a message ends with an error instead of waiting forever
        # (the slowest runtime measured filed 9.5 a second).
        wait_until(lambda: client.folder_total() >= messages, timeout=120 + messages,
                   interval=0.5, what=f"all {messages} messages filed")
        filed = time.perf_counter() - started
        after = _process_tree_cpu(stack.process.pid)
        return accepted, filed, {part: after[part] - before.get(part, 0.0) for part in after}
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--baseline", default="60b1bc8",
                        help="the commit to measure beside this tree, or 'none'")
    arguments = parser.parse_args()
    print(__doc__.split("\n\n")[0])
    rows: list[tuple[str, float, float, dict[str, float], float]] = []
    if arguments.baseline != "none":
        with tempfile.TemporaryDirectory() as scratch:
            tree = Path(scratch) / "baseline"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",
                            str(tree), arguments.baseline], check=True)
            try:
                # The edge's path is the tree alone: its mailcore must be found there too,
                # not through the editable install, which points at this tree.
                (tree / "mailcore").symlink_to(tree / "layers/mailcore/python/mailcore")
                bare = bare_accepted(arguments.messages)
                rows.append((f"baseline {arguments.baseline}",
                             *measure(arguments.messages, tree), bare))
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(tree)], check=True)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    bare = bare_accepted(arguments.messages)
    rows.append((f"this tree ({head})", *measure(arguments.messages, None), bare))

    print(f"\n{arguments.messages} messages of 10 KiB, smtp-source -s 20, one account, "
          f"{os.cpu_count()} cores")
    print("| local runtime | all accepted (s) | accepted per second | bare aiosmtpd per "
          "second | edge / bare | all filed (s) | filed per second |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    count = arguments.messages
    for name, accepted, filed, _, bare in rows:
        print(f"| {name} | {accepted:.1f} | {count / accepted:.0f} | {count / bare:.0f} | "
              f"{bare / accepted:.2f} | {filed:.1f} | {count / filed:.1f} |")
    parts = sorted({part for row in rows for part in row[3]})
    print("\nCPU per message (ms), from the first message sent to the last filed:")
    print(f"| local runtime | {' | '.join(parts)} | all |")
    print(f"|---|{'---:|' * (len(parts) + 1)}")
    for name, _, _, cpu, _ in rows:
        figures = [1000 * cpu.get(part, 0.0) / count for part in parts]
        print(f"| {name} | {' | '.join(f'{figure:.1f}' for figure in figures)} | "
              f"{sum(figures):.1f} |")
    if len(rows) == 2:
        print(f"ratio: {rows[0][2] / rows[1][2]:.2f}x the baseline's filing rate")
    print("targets: edge / bare at least 0.35; at least 100 messages filed per second")


if __name__ == "__main__":
    main()
