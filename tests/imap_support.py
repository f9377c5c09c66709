"""A real IMAP server (both listeners) on 127.0.0.1 in a background event loop, for tests."""

from __future__ import annotations

import asyncio
import imaplib
import json
import ssl
import tempfile
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edge.imap.backend.storage import Blocking, ImapStorage
from edge.imap.config import ImapLimits
from edge.imap.listeners import ImapListeners, start_imap
from edge.listening import Network
from edge.tls import ensure_self_signed, server_context
from mailcore.adapters.memory.directory import InMemoryAccountDirectory
from mailcore.adapters.memory.login_throttle import InMemoryLoginThrottle
from mailcore.adapters.memory.mailbox import InMemoryMailboxRepository
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.adapters.memory.views import InMemoryImapViews
from mailcore.imap_view.view import FORMAT
from mailcore.ports import (
    AccountDirectory,
    ImapViews,
    LoginThrottle,
    Mailboxes,
    MessageStore,
    RawReferences,
)

ACCOUNTS = {"bob@hamburger.edu": "bob-password", "carol@hamburger.edu": "carol-password"}


@dataclass
class RunningImap:
    listeners: ImapListeners
    storage: ImapStorage
    cert_file: Path

    @property
    def imap_port(self) -> int:
        return self.listeners.ports["imap"]

    @property
    def imaps_port(self) -> int:
        return self.listeners.ports["imaps"]

    def client_tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.cert_file))
        context.check_hostname = False
        return context

    def logged_in(self, account: str = "bob@hamburger.edu") -> imaplib.IMAP4_SSL:
        client = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port, ssl_context=self.client_tls())
        client.login(account, ACCOUNTS[account])
        return client


@contextmanager
def running_imap(mailboxes: Mailboxes | None = None, store: MessageStore | None = None,
                 references: RawReferences | None = None,
                 directory: AccountDirectory | None = None,
                 throttle: LoginThrottle | None = None,
                 limits: ImapLimits | None = None,
                 proxy_trusted: tuple[Network, ...] | None = None,
                 views: ImapViews | None = None) -> Iterator[RunningImap]:
    memory_mailboxes = InMemoryMailboxRepository()
    if views is None:
        # Mailboxes on the table come with the table's views (adapters.imap_views).
        if mailboxes is not None and not isinstance(mailboxes, InMemoryMailboxRepository):
            raise TypeError("running_imap: give the views that go with these mailboxes")
        views = InMemoryImapViews(mailboxes or memory_mailboxes)
    executor = ThreadPoolExecutor(max_workers=8)
    storage = ImapStorage(
        mailboxes=mailboxes or memory_mailboxes,
        store=store or InMemoryMessageStore(),
        references=references or memory_mailboxes.references,
        directory=directory or InMemoryAccountDirectory(ACCOUNTS),
        throttle=throttle or InMemoryLoginThrottle(),
        blocking=Blocking(executor), views=views)
    with tempfile.TemporaryDirectory() as folder:
        cert_file, key_file = ensure_self_signed(Path(folder), "hamburger.edu")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        listeners = asyncio.run_coroutine_threadsafe(start_imap(
            storage, "hamburger.edu", "127.0.0.1", 0, 0, server_context(cert_file, key_file),
            limits, proxy_trusted), loop).result(timeout=10)
        try:
            yield RunningImap(listeners, storage, cert_file)
        finally:
            asyncio.run_coroutine_threadsafe(_close(listeners), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            executor.shutdown(wait=True)
            loop.close()


async def _close(listeners: ImapListeners) -> None:
    """Listeners first, then every connection still open (tests leave some so)."""
    listeners.close()
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# What a message's IMAP view (mailcore/imap_view) may be when a client asks: kept when its
# bytes were written; none, as for mail filed before views existed; of an older format; or
# damaged (not zlib, not JSON, a JSON of another shape, a decompression bomb).
VIEW_STATES = ("kept", "none", "older", "damaged")
_DAMAGED = (b"not a view", zlib.compress(b"{not json"), zlib.compress(b'[1, "short"]'),
            zlib.compress(b"[" + b" " * (8 * 1024 * 1024) + b"]"))


def as_filed_before(imap: RunningImap, state: str) -> None:
    """Put the memory mailboxes' views in `state` (VIEW_STATES): FETCH and SEARCH answer
    from the bytes then, making the views again, and must answer the same."""
    mailboxes = imap.storage.mailboxes
    assert isinstance(mailboxes, InMemoryMailboxRepository)
    if state == "none":
        mailboxes.views.clear()
    elif state == "older":
        older = zlib.compress(json.dumps([FORMAT - 1]).encode())
        for key in mailboxes.views:
            mailboxes.views[key] = older
    elif state == "damaged":
        for number, key in enumerate(mailboxes.views):
            mailboxes.views[key] = _DAMAGED[number % len(_DAMAGED)]

