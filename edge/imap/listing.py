"""LIST and LSUB patterns (RFC 3501 6.3.8: `*` matches anything, `%` anything but the
hierarchy separator) matched in time linear in the name, whatever the pattern holds.

pymap makes each `*` a lazy `.*?` of a regular expression, whose backtracking grows with
the power of the number of wildcards: `LIST "" "*a*a*a*a*b"` over a 200-character folder
name took 14 s, the edge's event loop frozen meanwhile. Here the pattern is run as the
automaton it is: the set of pattern positions a name's prefix can have reached, kept as
the bits of one integer and moved on by each character of the name (O(name x pattern /
word size), no backtracking). A pattern is also bounded, and a client sending a longer
one is told so."""

from __future__ import annotations

import string
from collections.abc import Iterable

from pymap.listtree import ListEntry, ListTree

from mailcore.domain.mailbox import MAX_FOLDER_NAME

IMAP_INBOX = "INBOX"
# A reference and pattern together: a folder name's length four times over is room for
# any pattern that means something; more wildcards than that say nothing more.
MAX_PATTERN = 4 * MAX_FOLDER_NAME
MAX_WILDCARDS = 64
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def pattern_problem(reference: str, pattern: str) -> str | None:
    """Why LIST refuses this reference and pattern, or None when it takes them."""
    combined = reference + pattern
    if len(combined) > MAX_PATTERN:
        return f"a LIST reference and pattern have at most {MAX_PATTERN} characters"
    if combined.count("*") + combined.count("%") > MAX_WILDCARDS:
        return f"a LIST pattern has at most {MAX_WILDCARDS} wildcards"
    return None


class MailboxPattern:
    """A LIST pattern, compiled once and matched against each folder name."""

    def __init__(self, pattern: str, delimiter: str, ignore_case: bool = False) -> None:
        tokens: list[str] = []
        for char in pattern.translate(_ASCII_LOWER) if ignore_case else pattern:
            if char in "*%" and tokens and tokens[-1] in "*%":
                # A run of wildcards means one: `*` if it holds one, else `%`.
                tokens[-1] = "*" if "*" in (char, tokens[-1]) else "%"
            else:
                tokens.append(char)
        self._delimiter = delimiter
        self._ignore_case = ignore_case
        self._literal: dict[str, int] = {}
        self._anything = self._within_level = 0
        for position, piece in enumerate(tokens):
            bit = 1 << position
            if piece == "*":
                self._anything |= bit
            elif piece == "%":
                self._within_level |= bit
            else:
                self._literal[piece] = self._literal.get(piece, 0) | bit
        self._wildcards = self._anything | self._within_level
        self._accept = 1 << len(tokens)

    def _closure(self, states: int) -> int:
        # A wildcard may match nothing; runs were made one wildcard, so one step is all.
        return states | ((states & self._wildcards) << 1)

    def matches(self, name: str) -> bool:
        states = self._closure(1)
        for char in name.translate(_ASCII_LOWER) if self._ignore_case else name:
            staying = self._anything if char == self._delimiter else self._wildcards
            states = self._closure(((states & self._literal.get(char, 0)) << 1)
                                   | (states & staying))
            if not states:
                return False
        return bool(states & self._accept)


class FolderTree(ListTree):
    """pymap's tree of folder names, matched with MailboxPattern; INBOX in any (ASCII)
    letter case, as RFC 3501 5.1 says."""

    __slots__ = ()

    def list_matching(self, ref_name: str, filter_: str) -> Iterable[ListEntry]:
        pattern = MailboxPattern(ref_name + filter_, self._delimiter)
        inbox = MailboxPattern(ref_name + filter_, self._delimiter, ignore_case=True)
        for entry in self.list():
            if (inbox if entry.name == IMAP_INBOX else pattern).matches(entry.name):
                yield entry
