"""In-memory adapters: for unit tests and for benchmarks of the edge without AWS."""

from __future__ import annotations

import threading
import time

from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import envelope_key, message_id_of_key, message_key
from mailcore.errors import MessageNotFound, PermanentFailure, StorageUnavailable


class InMemoryRawMessageStore:
    def __init__(self, latency_seconds: float = 0.0) -> None:
        self.objects: dict[str, bytes] = {}
        self.available = True
        self.latency_seconds = latency_seconds
        self.put_started = threading.Event()
        self._lock = threading.Lock()

    def put(self, message_id: str, raw: bytes, envelope: Envelope) -> str:
        self.put_started.set()
        if self.latency_seconds:
            time.sleep(self.latency_seconds)  # stands in for a network round trip
        if not self.available:
            raise StorageUnavailable("store made unavailable")
        key = message_key(message_id)
        with self._lock:
            self.objects[envelope_key(message_id)] = envelope.to_json()
            self.objects[key] = raw
        return key

    def get_raw(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError:
            raise MessageNotFound(key) from None

    def get_envelope(self, key: str) -> Envelope:
        message_id = message_id_of_key(key)
        if message_id is None:
            raise PermanentFailure(f"not a message key: {key!r}")
        try:
            return Envelope.from_json(self.objects[envelope_key(message_id)])
        except KeyError:
            raise MessageNotFound(key) from None

    def get_message(self, key: str) -> tuple[Envelope, bytes]:
        return self.get_envelope(key), self.get_raw(key)

    def delete_message(self, key: str) -> None:
        """ObjectStore.delete_message: the message and its envelope."""
        message_id = message_id_of_key(key)
        with self._lock:
            self.objects.pop(key, None)
            if message_id:
                self.objects.pop(envelope_key(message_id), None)

    def message_keys(self) -> list[str]:
        return [key for key in self.objects if message_id_of_key(key)]
