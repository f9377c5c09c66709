"""Starting `mailpipe up` as a separate process, as a user would, and waiting until it is up.

Used by the end-to-end tests and the benchmarks.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from mailpipe.local.stack import DEFAULT_PORTS, DEFAULT_STATE_DIR, ROOT

MAILPIPE = str(Path(sys.executable).parent / "mailpipe")


def free_ports(count: int) -> list[int]:
    """Ports for another process to bind, all distinct.

    Every probe stays open until all are chosen: probing one at a time lets the kernel hand
    out the same just-closed port twice (seen in CI: two listeners of one edge on one port).
    """
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def free_port() -> int:
    [port] = free_ports(1)
    return port


@dataclass
class StackProcess:
    process: subprocess.Popen[str]
    smtp_port: int
    http_port: int
    aws_port: int
    submission_port: int
    imap_port: int
    imaps_port: int
    state_dir: Path
    output: list[str] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v1"

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def start_stack(domains: list[str], users: dict[str, str], *extra: str,
                timeout: float = 90, environment: dict[str, str] | None = None,
                smtp_port: int | None = None) -> StackProcess:
    # One more than needed, so a caller's own port can be left out without a second probe.
    chosen = [port for port in free_ports(7) if port != smtp_port]
    smtp_port = smtp_port or chosen.pop()
    http_port, aws_port, submission_port, imap_port, imaps_port = chosen[:5]
    state_dir = DEFAULT_STATE_DIR
    command = [MAILPIPE, "up", "--smtp-port", str(smtp_port), "--http-port", str(http_port),
               "--aws-port", str(aws_port), "--submission-port", str(submission_port),
               "--imap-port", str(imap_port), "--imaps-port", str(imaps_port),
               "--state-dir", str(state_dir), *extra]
    for domain in domains:
        command += ["--domain", domain]
    for address, password in users.items():
        command += ["--user", f"{address}:{password}"]
    return start_command(StackProcess(
        _popen(command, environment), smtp_port, http_port, aws_port, submission_port,
        imap_port, imaps_port, state_dir), timeout)


def _popen(command: list[str], environment: dict[str, str] | None) -> subprocess.Popen[str]:
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,  # noqa: S603
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(environment or {})})


def start_with_offset(offset: int, arguments: list[str], timeout: float = 90,
                      state_dir: Path = DEFAULT_STATE_DIR) -> StackProcess:
    """`mailpipe up --port-offset N ...`, as a user starts a stack beside another: every
    port is its default plus N."""
    return start_up(["--port-offset", str(offset), "--state-dir", str(state_dir), *arguments],
                    timeout)


def start_up(arguments: list[str], timeout: float = 90) -> StackProcess:
    """`mailpipe up` with these arguments exactly (a README's, say), its ports the defaults
    moved by the arguments' --port-offset."""
    def value(option: str) -> str | None:
        return arguments[arguments.index(option) + 1] if option in arguments else None

    offset = int(value("--port-offset") or 0)
    port = {name: default + offset for name, default in DEFAULT_PORTS.items()}
    command = [MAILPIPE, "up", *arguments]
    return start_command(StackProcess(
        _popen(command, None), port["smtp_port"], port["http_port"], port["aws_port"],
        port["submission_port"], port["imap_port"], port["imaps_port"],
        Path(value("--state-dir") or DEFAULT_STATE_DIR)), timeout)


def start_command(stack: StackProcess, timeout: float) -> StackProcess:
    """Wait until the started `mailpipe up` says it is up (its output kept in the stack)."""
    process = stack.process
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stack.output.append(line)
            if line.startswith("mailpipe is up"):
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(timeout) or process.poll() is not None:
        process.kill()
        raise RuntimeError("mailpipe up did not start:\n" + "".join(stack.output[-40:]))
    return stack
