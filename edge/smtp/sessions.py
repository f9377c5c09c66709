"""Who is connected: connection limits, and draining at shutdown."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Protocol

from edge.smtp import replies


class Session(Protocol):
    @property
    def in_transaction(self) -> bool: ...

    def close_with(self, reply: str) -> None: ...


class SessionRegistry:
    """Every open session of every listener, so limits and shutdown see them all."""

    def __init__(self, max_connections: int, max_per_client: int) -> None:
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.draining = False
        self._sessions: dict[Session, str | None] = {}
        self._per_client: Counter[str] = Counter()
        self._empty = asyncio.Event()
        self._empty.set()

    def __len__(self) -> int:
        return len(self._sessions)

    def admit(self, session: Session) -> str | None:
        """None to go on, or the reply to close the connection with."""
        if self.draining:
            return replies.SHUTTING_DOWN
        if len(self._sessions) >= self.max_connections:
            return replies.TOO_MANY_CONNECTIONS
        self._sessions[session] = None
        self._empty.clear()
        return None

    def identify(self, session: Session, client: str) -> str | None:
        """Count the session against its client address (known after PROXY, if used)."""
        if self._per_client[client] >= self.max_per_client:
            return replies.TOO_MANY_FROM_CLIENT
        self._per_client[client] += 1
        self._sessions[session] = client
        return None

    def release(self, session: Session) -> None:
        client = self._sessions.pop(session, None)
        if client is not None:
            self._per_client[client] -= 1
            if self._per_client[client] <= 0:
                del self._per_client[client]
        if not self._sessions:
            self._empty.set()

    async def drain(self, grace_seconds: float) -> int:
        """Refuse new sessions, close idle ones now and busy ones after the grace period.
        Returns how many sessions had to be cut off."""
        self.draining = True
        for session in list(self._sessions):
            if not session.in_transaction:
                session.close_with(replies.SHUTTING_DOWN)
        try:
            await asyncio.wait_for(self._empty.wait(), grace_seconds)
            return 0
        except TimeoutError:
            remaining = list(self._sessions)
            for session in remaining:
                session.close_with(replies.SHUTTING_DOWN)
            return len(remaining)
