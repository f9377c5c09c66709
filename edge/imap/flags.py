"""IMAP's flags and the mailbox's: the system flags by name, keywords as they are."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from pymap.parsing.specials.flag import Answered, Deleted, Draft, Flag, Flagged, Seen

SYSTEM_FLAGS: dict[Flag, str] = {
    Seen: "seen",
    Flagged: "flagged",
    Answered: "answered",
    Draft: "draft",
    Deleted: "deleted",
}
_BY_NAME = {name: flag for flag, name in SYSTEM_FLAGS.items()}


def stored_flags(flags: Iterable[Flag]) -> frozenset[str]:
    """What the mailbox keeps: "seen" for \\Seen (the API's names), a keyword such as
    $Junk as itself. A keyword spelt like a system flag's name (`seen`) is that flag."""
    return frozenset(SYSTEM_FLAGS.get(flag) or bytes(flag).decode("ascii", "replace")
                     for flag in flags)


def imap_flags(stored: Iterable[str]) -> frozenset[Flag]:
    return _imap_flags(stored if isinstance(stored, frozenset) else frozenset(stored))


@functools.lru_cache(maxsize=1024)
def _imap_flags(stored: frozenset[str]) -> frozenset[Flag]:
    # A folder's messages share a handful of flag sets: made once each, not once per
    # message listed (10,000 of them when a large folder is selected).
    return frozenset(_BY_NAME.get(name) or Flag(name.encode("ascii", "replace"))
                     for name in stored)
