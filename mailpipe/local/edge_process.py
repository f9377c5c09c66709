"""One container of the edge's ECS task, run by `mailpipe up` as a process."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from mailpipe.local import logs

log = logging.getLogger("mailpipe.local")


class EdgeProcess:
    """One container of the edge's ECS task, run here as a process: its output goes to the
    stack's log under its name, and it is started again when it ends, as ECS would."""

    def __init__(self, name: str, role: str, environment: dict[str, str], host: str,
                 ports: list[int], cwd: Path) -> None:
        self.name = name
        self._role = role
        self._environment = environment
        self._host = host
        self._ports = ports
        self._cwd = cwd
        self._process: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self._process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            # Through edge_child: the process ends with `mailpipe up`, however that ends.
            [sys.executable, "-m", "mailpipe.local.edge_child", self._role,
             str(os.getpid())], env=self._environment, cwd=self._cwd,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        threading.Thread(target=self._pipe_logs, args=(self._process,), daemon=True).start()
        log.info("%s started (pid %s)", self.name, self._process.pid)

    def wait_listening(self, timeout: float = 30) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        waiting = list(self._ports)
        while waiting and time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start "
                                   f"(status {self._process.returncode})")
            try:
                with socket.create_connection((self._host, waiting[0]), timeout=1):
                    waiting.pop(0)
            except OSError:
                time.sleep(0.1)
        if waiting:
            raise RuntimeError(f"{self.name} did not start listening on port {waiting[0]}")

    def exit_status(self) -> int | None:
        """The status it ended with, None while it runs (or was never started)."""
        return self._process.poll() if self._process is not None else None

    def terminate(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            # One stopped with SIGSTOP would never see the SIGTERM.
            self._process.send_signal(signal.SIGCONT)

    def wait_stopped(self, timeout: float) -> None:
        if self._process is None:
            return
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _pipe_logs(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            logs.emit(self.name, line.rstrip("\n"))
