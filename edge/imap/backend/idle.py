"""IDLE (RFC 2177): idle clients told that their folder changed, by polling the folder's
MODSEQ, once per watched folder in this process."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from pymap.concurrent import Event
from pymap.exceptions import TemporaryFailure

from edge.imap.backend.storage import ImapStorage

IDLE_POLL_SECONDS = 2.0  # how often an idle client's folder is looked at (issue: < 5 s)


class FolderWatch:
    """Tells idle clients that their folder changed, with one poll per watched folder in
    this process however many connections idle on it (a phone, a laptop and a tablet on
    one Inbox cost what one does): each poll is one small, eventually consistent read of
    the folder's MODSEQ; only when it moved do the clients read what changed."""

    def __init__(self, storage: ImapStorage, interval: float = IDLE_POLL_SECONDS) -> None:
        self._storage = storage
        self._interval = interval
        self._watches: dict[tuple[str, str], _Watch] = {}

    async def wait(self, account: str, folder: str, known: int, stop: Event) -> None:
        """Return once the folder's MODSEQ is above `known`, or `stop` is set."""
        key = (account, folder)
        watch = self._watches.get(key)
        if watch is None:
            watch = self._watches[key] = _Watch()
            watch.task = asyncio.create_task(self._poll(key, watch))
        watch.waiters += 1
        stopping = asyncio.create_task(stop.wait())
        try:
            while watch.modseq <= known and not stop.is_set():
                changed = asyncio.create_task(watch.changed.wait())
                try:
                    await asyncio.wait({changed, stopping},
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
        finally:
            # Also when the connection goes mid-IDLE: no task is left waiting behind it.
            stopping.cancel()
            watch.waiters -= 1

    async def _poll(self, key: tuple[str, str], watch: _Watch) -> None:
        try:
            while watch.waiters or watch.fresh:
                watch.fresh = False
                with contextlib.suppress(TemporaryFailure):
                    modseq = await self._storage.blocking(self._storage.mailboxes.highest_modseq,
                                                          *key)
                    if modseq > watch.modseq:
                        watch.modseq = modseq
                        watch.changed.set()
                        watch.changed = asyncio.Event()
                await asyncio.sleep(self._interval)
        finally:
            del self._watches[key]

    @property
    def watched(self) -> int:
        return len(self._watches)


@dataclass
class _Watch:
    modseq: int = 0
    waiters: int = 0
    fresh: bool = True  # not yet polled: keeps the task alive until its first read
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
