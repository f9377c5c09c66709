"""The MessageStore port (RawMessageStore and ObjectStore) in memory: for unit tests and for
benchmarks of the edge without AWS. `latency_seconds` stands in for S3's round trips."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from urllib.parse import quote

from mailcore import s3_keys
from mailcore.domain.envelope import Envelope
from mailcore.errors import MessageNotFound, PermanentFailure, TooLarge
from mailcore.ports import UploadForm

LINK_BASE = "memory://objects/"


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    content_type: str
    filename: str | None


class InMemoryMessageStore:
    def __init__(self, latency_seconds: float = 0.0) -> None:
        self.objects: dict[str, bytes] = {}
        self.metadata: dict[str, StoredObject] = {}
        self.latency_seconds = latency_seconds
        self.ranged_reads = 0  # get_range calls, for tests that count reads
        self.put_started = threading.Event()
        self._lock = threading.Lock()

    # -- RawMessageStore -------------------------------------------------------------------
    def put(self, message_id: str, raw: bytes, envelope: Envelope) -> str:
        self.put_started.set()
        if self.latency_seconds:
            time.sleep(self.latency_seconds)  # stands in for a network round trip
        key = s3_keys.message_key(message_id)
        with self._lock:
            self.objects[s3_keys.envelope_key(message_id)] = envelope.to_json()
            self.objects[key] = raw
        return key

    def get_raw(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError:
            raise MessageNotFound(key) from None

    def get_range(self, key: str, start: int, end: int) -> bytes:
        self.ranged_reads += 1
        return self.get_raw(key)[start:end]

    def get_envelope(self, key: str) -> Envelope:
        message_id = s3_keys.message_id_of_key(key)
        if message_id is None:
            raise PermanentFailure(f"not a message key: {key!r}")
        try:
            return Envelope.from_json(self.objects[s3_keys.envelope_key(message_id)])
        except KeyError:
            raise MessageNotFound(key) from None

    def get_message(self, key: str) -> tuple[Envelope, bytes]:
        return self.get_envelope(key), self.get_raw(key)

    # -- ObjectStore (the key layout is mailcore.s3_keys's, as in S3) ------------------------
    def draft_key(self, draft_id: str) -> str:
        return s3_keys.draft_key(draft_id)

    def part_key(self, accepted_id: str, index: int) -> str:
        return s3_keys.part_key(accepted_id, index)

    def upload_key(self, account: str, upload_id: str) -> str:
        return s3_keys.upload_key(account, upload_id)

    def appended_key(self, message_id: str) -> str:
        return s3_keys.appended_key(message_id)

    def put_object(self, key: str, data: bytes | bytearray, content_type: str,
                   filename: str | None = None) -> None:
        data = bytes(data)  # kept: the caller's buffer may change
        with self._lock:
            self.objects[key] = data
            self.metadata[key] = StoredObject(data, content_type, filename)

    def exists(self, key: str) -> bool:
        return key in self.objects

    def get_object(self, key: str, max_size: int) -> bytes:
        data = self.get_raw(key)
        if len(data) > max_size:
            raise TooLarge(f"larger than {max_size} bytes")
        return data

    def delete_message(self, key: str) -> None:
        message_id = s3_keys.message_id_of_key(key)
        with self._lock:
            self.objects.pop(key, None)
            self.metadata.pop(key, None)
            self.objects.pop(s3_keys.imap_view_object_key(key), None)
            if message_id:
                self.objects.pop(s3_keys.envelope_key(message_id), None)

    def download_link(self, key: str) -> str:
        return LINK_BASE + quote(key)

    def upload_form(self, key: str, content_type: str, max_size: int) -> UploadForm:
        return UploadForm(LINK_BASE, {"key": key, "Content-Type": content_type,
                                      "max-size": str(max_size)})

    # -- for tests -------------------------------------------------------------------------
    def message_keys(self) -> list[str]:
        return [key for key in self.objects if s3_keys.message_id_of_key(key)]
