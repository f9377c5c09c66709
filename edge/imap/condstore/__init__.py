"""CONDSTORE (RFC 7162 section 3.1) on pymap's parser, which knows none of it: ENABLE (RFC
5161), the MODSEQ fetch item, FETCH's CHANGEDSINCE and STORE's UNCHANGEDSINCE modifiers,
the SEARCH MODSEQ criterion and STATUS HIGHESTMODSEQ. The values are the folders' own
MODSEQs, the ones every filing, flag change, move and expunge advances.

All of it is here: commands.py parses the commands and modifiers; fetch.py the MODSEQ
fetch item and the answers FETCH writes; session.py the conditional STORE over the
folders; state.py answers the commands (ENABLE, SELECT's HIGHESTMODSEQ, FETCH, STORE,
SEARCH, STATUS) and adds MODSEQ to the FETCH FLAGS pymap sends. This module holds the names
and what the backend shares with them: the folder's snapshot with its MODSEQ and the
refusal of a conditional STORE."""

from __future__ import annotations

from typing import Any

from pymap.mailbox import MailboxSnapshot

CONDSTORE = b"CONDSTORE"
MODSEQ = b"MODSEQ"
HIGHESTMODSEQ = b"HIGHESTMODSEQ"
# RFC 7162 7: mod-sequence-value is 1 to 2^63 - 1; CHANGEDSINCE and UNCHANGEDSINCE take 0.
MAX_MODSEQ = 2**63 - 1


class FolderSnapshot(MailboxSnapshot):
    """pymap's snapshot, with the folder's MODSEQ read in the same folder read (STATUS
    HIGHESTMODSEQ)."""

    __slots__ = ["highest_modseq"]

    def __init__(self, *args: Any, highest_modseq: int) -> None:
        super().__init__(*args)
        self.highest_modseq = highest_modseq


class ModifiedSince(Exception):  # named as RFC 7162's MODIFIED response code
    """A conditional STORE's message changed after the MODSEQ the client gave."""

    def __init__(self, uid: int) -> None:
        super().__init__(uid)
        self.uid = uid
