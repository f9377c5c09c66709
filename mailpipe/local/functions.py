"""Running a template's functions locally: each in its own worker processes, like Lambda."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from mailpipe.local.metering import Meter
from mailpipe.local.provision import FunctionSpec

# How often a worker's memory is read while it runs an invocation. The peak (VmHWM) is
# what is compared with the limit, so a spike between two reads is still seen.
MEMORY_POLL_SECONDS = 0.02


class FunctionError(Exception):
    """The invocation failed: the handler raised, timed out or its process died."""

    def __init__(self, message: str, error_type: str = "Runtime") -> None:
        super().__init__(message)
        self.summary = f"{error_type}: {message.splitlines()[0] if message else ''}"


class _Worker:
    def __init__(self, spec: FunctionSpec, environment: dict[str, str],
                 log_line: Callable[[str, str], None]) -> None:
        self.spec = spec
        python_path = os.pathsep.join(
            [str(spec.code_dir), *(str(layer) for layer in spec.layer_dirs)]
        )
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "mailpipe.local.worker", spec.handler, str(spec.timeout),
             spec.logical_id],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1, cwd=spec.code_dir,
            env={**environment, **spec.environment, "PYTHONPATH": python_path,
                 "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                 "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb)},
        )
        self._responses: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(log_line,), daemon=True).start()
        ready = self._responses.get(timeout=60)
        if ready is None:
            raise FunctionError(f"{spec.logical_id} failed to start")
        self._enforce_memory_size()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._responses.put(line)
        self._responses.put(None)

    def _read_stderr(self, log_line: Callable[[str, str], None]) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            log_line(self.spec.logical_id, line.rstrip("\n"))

    def invoke(self, event: dict[str, Any]) -> Any:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps({"event": event,
                                                 "request_id": str(uuid.uuid4())}) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise FunctionError(f"{self.spec.logical_id} is not running") from exc
        deadline = time.monotonic() + self.spec.timeout + 1
        while True:
            try:
                line = self._responses.get(timeout=MEMORY_POLL_SECONDS)
                break
            except queue.Empty:
                self._enforce_memory_size()
                if time.monotonic() > deadline:
                    self.stop()
                    raise FunctionError(f"{self.spec.logical_id} timed out") from None
        # A handler that went over its limit and answered between two reads still fails,
        # as it would in Lambda.
        self._enforce_memory_size()
        if line is None:
            raise FunctionError(f"{self.spec.logical_id} exited")
        response = json.loads(line)
        if "error" in response:
            error = response["error"]
            raise FunctionError(str(error.get("errorMessage")), str(error.get("errorType")))
        return response["result"]

    def _enforce_memory_size(self) -> None:
        """Kill the worker, failing its invocation, once its resident memory has passed the
        function's MemorySize, as Lambda does. Resident memory, read from /proc, not an
        address-space limit: Python reserves far more address space than it uses."""
        peak = _peak_resident_bytes(self.process.pid)
        limit = self.spec.memory_mb * 2**20
        if peak is not None and peak > limit:
            self.stop()
            raise FunctionError(
                f"{self.spec.logical_id} ran out of memory: {peak / 2**20:.0f} MB used of "
                f"{self.spec.memory_mb} MB (its MemorySize); the worker was killed",
                "Runtime.OutOfMemory")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive:
            self.process.kill()
        self.process.wait()


def _peak_resident_bytes(pid: int) -> int | None:
    """The process's peak resident set size (VmHWM), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class LocalFunction:
    """Up to `concurrency` warm workers; a dead or timed-out worker is replaced."""

    def __init__(self, spec: FunctionSpec, environment: dict[str, str],
                 log_line: Callable[[str, str], None], concurrency: int = 2,
                 meter: Meter | None = None) -> None:
        self.spec = spec
        self._meter = meter
        self._environment = environment
        self._log_line = log_line
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(concurrency)
        self._stopped = False

    def warm(self) -> None:
        self._idle.put(self._new_worker())

    def _new_worker(self) -> _Worker:
        worker = _Worker(self.spec, self._environment, self._log_line)
        with self._lock:
            self._all.append(worker)
        return worker

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._slots:
            if self._stopped:
                raise FunctionError("stopped")
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                worker = self._new_worker()
            started = time.perf_counter()
            try:
                return worker.invoke(event)
            finally:
                if self._meter is not None:
                    self._meter.invoked(self.spec.logical_id,
                                        (time.perf_counter() - started) * 1000)
                if worker.alive:
                    self._idle.put(worker)
                else:
                    with self._lock:
                        self._all.remove(worker)

    def stop(self) -> None:
        self._stopped = True
        with self._lock:
            workers = list(self._all)
        for worker in workers:
            worker.stop()
