"""A command's untagged answers written to the client's socket in batches.

pymap writes a FETCH answer as many small pieces (the tag, each item, each separator);
written straight to the TLS stream, each piece was encrypted as its own record and sent
with its own system call: for `UID FETCH 1:* (FLAGS)` on 10,000 messages, about a fifth
of the IMAP process's CPU (a py-spy profile); for a FETCH of 200 messages' structure, 60
of its 110 ms (nine pieces an answer). Pieces are gathered here and handed to the
stream a batch at a time; a batch ends after the answer that fills it, so one answer
still goes out before the next is loaded (connection.py's write_response)."""

from __future__ import annotations

import asyncio

BATCH_BYTES = 64 * 1024  # sixteen TLS records of 4 KiB: a batch costs a few sends


class BatchedWriter:
    """pymap's WriteStream for the answers of one command, over the client's stream."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._pending = bytearray()

    def write(self, data: bytes) -> None:
        self._pending += data

    @property
    def full(self) -> bool:
        return len(self._pending) >= BATCH_BYTES

    def flush(self) -> None:
        """What was gathered, handed to the stream (then drained by the caller)."""
        if self._pending:
            self._writer.write(bytes(self._pending))
            self._pending.clear()
