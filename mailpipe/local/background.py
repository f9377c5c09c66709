"""A daemon thread running one loop until it is told to stop: what each of the local
runtime's event sources (SQS pollers, schedule timers) is."""

from __future__ import annotations

import threading


class BackgroundLoop:
    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        raise NotImplementedError
