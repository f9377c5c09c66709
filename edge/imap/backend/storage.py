"""The ports IMAP reads and changes an account's folders through, and the hop that runs each
blocking storage call (boto3) on the edge's thread pool, never on the event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

from pymap.exceptions import TemporaryFailure

from mailcore.errors import TransientFailure
from mailcore.ports import (
    AccountDirectory,
    ImapViews,
    LoginThrottle,
    Mailboxes,
    MessageStore,
    RawReferences,
)

T = TypeVar("T")


class Blocking:
    """Runs a blocking storage call on the edge's thread pool and awaits it."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    async def __call__(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor,
                                              functools.partial(function, *args))
        except TransientFailure as exc:
            raise TemporaryFailure("storage unavailable, try again later") from exc


@dataclass(frozen=True)
class ImapStorage:
    mailboxes: Mailboxes
    store: MessageStore
    references: RawReferences
    directory: AccountDirectory
    throttle: LoginThrottle
    blocking: Blocking
    views: ImapViews
