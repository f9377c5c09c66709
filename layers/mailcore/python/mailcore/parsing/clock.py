"""A wall-clock limit on a parse, the backstop for whatever the counted bounds do not
foresee: a real-time timer (SIGALRM), since Lambda runs handlers on the main thread."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

EXPIRY_REPEAT_SECONDS = 0.05


class ParseTimeout(Exception):
    """Parsing took longer than its limit's parse_seconds."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ParseTimeout in the parse after `seconds`. Off the main thread, or with a
    timer already set, no limit."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getitimer(signal.ITIMER_REAL)[0] > 0):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise ParseTimeout(f"parse took over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    # Raised again every EXPIRY_REPEAT_SECONDS until it ends the parse: the signal handler
    # runs in whatever Python code is current, and an exception raised in a garbage
    # collector's callback or a __del__ is printed and dropped (seen under hypothesis,
    # whose gc callback took the one ParseTimeout of a hostile message's parse).
    signal.setitimer(signal.ITIMER_REAL, seconds, EXPIRY_REPEAT_SECONDS)
    try:
        yield
    finally:
        _stop_timer(previous)


def _stop_timer(previous: Any) -> None:
    # A tick due as the timer is stopped raises here too; stopping must still finish, or the
    # repeating timer would go on raising in whatever runs after the parse.
    while True:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            return
        except ParseTimeout:
            continue
