"""Run every benchmark and write docs/bench-latest.md: the machine, the date, each
command, what it measures (its docstring) and the figures it printed. docs/PERFORMANCE.md
is the report written from such runs (its sections carry the same numbers as the titles
here); this file is the raw output of the last one.

    python bench/run_all.py [--quick]

--quick runs smaller sizes (for trying the benchmarks out, not for publishing).
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "bench-latest.md"

# (title, script, arguments, arguments with --quick)
BENCHMARKS = [
    ("1.1 SMTP edge: throughput, reply latency and memory", "edge_throughput.py", [],
     ["--messages-per-session", "10"]),
    ("1.3 SMTP edge: inbound verification on against off", "edge_verification.py", [],
     ["--messages-per-session", "10", "--rounds", "1"]),
    ("1.3 SMTP edge: the CPU of one SPF evaluation", "spf_evaluation.py", [],
     ["--evaluations", "200"]),
    ("1.2 SMTP edge: memory per transaction, 25 MiB messages and a blank-line flood",
     "edge_memory.py", [], ["--mib", "5"]),
    ("4.1 Pipeline: SMTP 250 to visible through the API", "pipeline_latency.py",
     ["--messages", "1000"], ["--messages", "100"]),
    ("4.2 Mailbox scale: items read per list page", "mailbox_scale.py",
     ["--sizes", "100,10000,100000"], ["--sizes", "100,1000", "--requests", "5"]),
    ("4.3 Cold start: handler import time and package size", "cold_start.py", [],
     ["--runs", "3"]),
    ("6. Cost per million messages on AWS (2.2: filing's requests)", "cost_model.py",
     ["--messages", "300"], ["--messages", "50"]),
    ("2.1 Filing memory: functions on the largest message of each shape", "memory.py", [], []),
    ("Issue 29: the junk model after 10,000 trained messages", "junk_model.py", [],
     ["--messages", "1000"]),
    ("3. Delivery: persistent connections per destination", "delivery_throughput.py", [], []),
    ("5.2 IMAP IDLE: storage reads and memory per idle connection", "imap_idle.py", [],
     ["--clients", "100", "--seconds", "10"]),
    ("5.1 IMAP on a 10,000-message folder, beside Dovecot", "imap_folder.py", [],
     ["--messages", "1000", "--appends", "100"]),
    ("4.4 Webmail: bytes before the first list, time to the list and to a message",
     "webmail.py", [], ["--messages", "300", "--runs", "3"]),
    # No baseline: a tree before issue 26 does not start beside this one (its `python -m`
    # children import this tree's modules; docs/PERFORMANCE.md §2.3).
    ("2.3 Local runtime: filing rate and CPU per message", "local_filing.py",
     ["--messages", "500", "--baseline", "none"], ["--messages", "100", "--baseline", "none"]),
    # Its default, 10,000, is the old load test's size; on moto as released filing slows
    # as the table grows (each transaction copies the tables it touches), so a run of all
    # benchmarks takes 1,000.
    ("2.4 Local runtime: the load test's full size, smtp-source through `mailpipe up`",
     "smtp_source_load.py", ["--messages", "1000"], ["--messages", "200"]),
    # 150 each: moto's server holds more than it should as its table grows (7 GB after
    # 300 each, and 11 minutes, while the filing process's CPU was 12 ms a message).
    ("2.5 Filing with the junk filter on against off: the filing process's CPU, requests and "
     "memory per message (an account trained on 10,000; moto in its own process)",
     "junk_filing.py", ["--messages", "150"], ["--messages", "50", "--trained", "1000"]),
    ("5.3 IMAP literals: memory while 20 connections send the largest literal they can",
     "imap_literals.py", [], ["--connections", "5", "--mib", "4"]),
    ("5.4 IMAP BODYSTRUCTURE of a 20 MiB message nested 50 deep, beside a flat one",
     "imap_structure.py", [], ["--mib", "4"]),
    ("5.5 MX greeting latency while IMAP runs the slowest LIST and SEARCH, and while 20 "
     "clients fetch a folder's structure (one loop)",
     "imap_mx_latency.py", [], ["--connections", "100", "--messages", "50"]),
    ("5.5 The same with SMTP and IMAP each in its own process, as the edge runs them",
     "imap_mx_latency.py", ["--edge", "apart"],
     ["--connections", "100", "--messages", "50", "--edge", "apart"]),
    # --fast-seed: moto's transactions copy the whole table per item, so filing 10,000
    # messages through the mailbox port would take hours; only while the folder is filed.
    ("5.6 IMAP: a client opening a folder of 200 and of 10,000 messages, beside Dovecot",
     "imap_open_folder.py", ["--messages", "200,10000", "--fast-seed"], ["--quick"]),
    ("5.5 MX greeting latency with IMAP in its own process, busy or frozen",
     "imap_isolation.py", [], ["--seconds", "3"]),
]


def _docstring(script: Path) -> str:
    text = ast.get_docstring(ast.parse(script.read_text())) or ""
    # The usage line is given as the command already.
    return "\n".join(line for line in text.splitlines()
                     if not line.strip().startswith("python bench/")).strip()


def _machine() -> str:
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB"
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in
                         ("aiosmtpd", "moto", "boto3", "aws-lambda-powertools"))
    return (f"{os.cpu_count()} cores{memory}, {platform.machine()}, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}; "
            f"{versions}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    sections = []
    started = time.monotonic()
    for title, script, full, quick in BENCHMARKS:
        options = quick if arguments.quick else full
        command = ["python", f"bench/{script}", *options]
        print(f"== {title}: {' '.join(command)}", flush=True)
        began = time.monotonic()
        result = subprocess.run([sys.executable, f"bench/{script}", *options], cwd=ROOT,
                                capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - began
        output = result.stdout.strip()
        print(output, flush=True)
        if result.returncode != 0:
            output += f"\n\n(exit status {result.returncode})\n{result.stderr[-3000:]}"
            print(result.stderr[-3000:], file=sys.stderr)
        sections.append(f"## {title}\n\nCommand: `{' '.join(command)}` ({elapsed:.0f} s)\n\n"
                        f"{_docstring(ROOT / 'bench' / script)}\n\n```\n{output}\n```\n")
    header = (
        "# The last benchmark run\n\n"
        "Written by `make bench` (`bench/run_all.py`): every figure below was printed by the\n"
        "benchmark named above it, in one run on one machine. Ratios are against baselines\n"
        "measured in the same run. Benchmarks print figures and never fail a test on timing.\n\n"
        f"- Machine: {_machine()}\n"
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        f"{' (--quick: reduced sizes)' if arguments.quick else ''}\n"
        f"- Whole run: {(time.monotonic() - started) / 60:.0f} minutes\n\n"
        "Load and fault figures come from tests, not benchmarks: `make test` sends 2,000\n"
        "messages with Postfix's smtp-source, crashes the filing function on a share of\n"
        "messages, cuts storage mid-load and sends 2,000 malformed messages\n"
        "(`tests/e2e/test_faults_and_load.py`).\n\n"
    )
    OUTPUT.write_text(header + "\n".join(sections))
    print(f"wrote {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
