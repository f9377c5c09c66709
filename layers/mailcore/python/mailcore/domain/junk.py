"""Junk: what an account has taught its filter, and what the filter decided (issue 29).

An account teaches by where it puts mail. A move sets a keyword on the stored message
(RFC 5788's `$Junk` / `$NotJunk`, as Thunderbird, Apple Mail and mox spell them), so the
lesson is part of the message's state, visible over IMAP, and the same on every protocol:

  into Junk                                  $Junk     (and not $NotJunk)
  out of Junk, to anywhere but Trash         $NotJunk  (and not $Junk)
  into Archive or a folder of the user's     $NotJunk  (and not $Junk)
  into the Inbox (not from Junk), Trash,     nothing: keeping mail in the Inbox or deleting
  Sent or Drafts                             it says nothing about junk

A message's lesson is what its keywords say now; the learner reconciles the filter with
that (see services.junk_learning), so the order in which changes are learned never
matters, a lesson learned twice counts once, and a change of mind undoes the first one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from mailcore.domain.mailbox import DRAFTS, INBOX, JUNK, SENT, TRASH, StoredMessage

JUNK_KEYWORD = "$Junk"
NOT_JUNK_KEYWORD = "$NotJunk"
# Below this many messages learned of each kind, content never junks a message (issue
# 29: at most 20). 20 keeps a new account's first lessons from deciding on a handful of
# words; the tests train 20-30 of each.
MIN_TRAINED_EACH = 20
# A classifier probability of junk at or above this files the message in Junk. High on
# purpose: a message wrongly in the Inbox costs a second; one wrongly in Junk may be missed.
JUNK_THRESHOLD = 0.95
DEFAULT_JUNK_DAYS = 30
MAX_JUNK_DAYS = 3650
# Allow and block lists are user-typed lists; bounded so that the settings item stays
# small (it is read with every message filed for the account).
MAX_LIST_ENTRIES = 500
MAX_ENTRY_LENGTH = 254
# A token for GTUBE (https://spamassassin.apache.org/gtube/): every filter junks it, so
# that a user can test the Junk folder without real junk.
GTUBE = b"XJS*C4JDBQADN1.NSBESC-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

_NOT_A_LESSON = frozenset({INBOX, TRASH, SENT, DRAFTS})


class Lesson(StrEnum):
    JUNK = "junk"
    NOT_JUNK = "not_junk"


def _has(flags: Iterable[str], keyword: str) -> bool:
    # IMAP keywords are case-insensitive (RFC 3501 2.3.2).
    wanted = keyword.casefold()
    return any(flag.casefold() == wanted for flag in flags)


def lesson_of(flags: Iterable[str]) -> Lesson | None:
    """What a stored message's keywords teach now; both at once teach nothing."""
    flags = tuple(flags)
    junk, not_junk = _has(flags, JUNK_KEYWORD), _has(flags, NOT_JUNK_KEYWORD)
    if junk == not_junk:
        return None
    return Lesson.JUNK if junk else Lesson.NOT_JUNK


def _with_lesson(flags: frozenset[str], lesson: Lesson) -> frozenset[str]:
    keep = {flag for flag in flags
            if flag.casefold() not in (JUNK_KEYWORD.casefold(), NOT_JUNK_KEYWORD.casefold())}
    keep.add(JUNK_KEYWORD if lesson is Lesson.JUNK else NOT_JUNK_KEYWORD)
    return frozenset(keep)


def keywords_after_move(source_folder: str, moved: StoredMessage) -> StoredMessage:
    """`moved` (a message that was in `source_folder`, now in moved.folder, or a copy of
    it there) with the keywords the move teaches (the table in this module's text).
    Folder ids: role folders are their names, a user folder has its own id."""
    target = moved.folder
    if target == source_folder:
        return moved
    if target == JUNK:
        return replace(moved, flags=_with_lesson(moved.flags, Lesson.JUNK))
    if source_folder == JUNK and target != TRASH:
        return replace(moved, flags=_with_lesson(moved.flags, Lesson.NOT_JUNK))
    if target in _NOT_A_LESSON:
        return moved
    return replace(moved, flags=_with_lesson(moved.flags, Lesson.NOT_JUNK))


def after_move(source_folder: str, moved: StoredMessage, now: datetime) -> StoredMessage:
    """`moved` with what a move from `source_folder` does to it: the junk keywords it
    teaches, and, when it changed folders, `now` as when it entered the new one (Junk is
    emptied of what has been in Junk longer than junk_days, not of what is old)."""
    if moved.folder == source_folder:
        return moved
    return replace(keywords_after_move(source_folder, moved), folder_since=now)


def copied_into(source: StoredMessage, folder: str, now: datetime) -> StoredMessage:
    """A copy of `source` in `folder` (the caller gives it its own id, UID and MODSEQ):
    the keywords the copy teaches, and in its folder since `now`, wherever it came from."""
    copied = keywords_after_move(source.folder, replace(source, folder=folder))
    return replace(copied, folder_since=now)


def lesson_key(message: StoredMessage) -> str:
    """What a lesson is kept under: the accepted bytes' id, shared by a message's copies in
    one account (a copy into Junk of a message in the Inbox is one message, learned once)."""
    return message.accepted_id or message.message_id


@dataclass(frozen=True)
class JunkSignals:
    """What the MX edge found that junks a message whatever its history (issue 29 item 4),
    kept in the envelope: the GTUBE string in its bytes, the DNS blocklists that list the
    connecting address."""

    gtube: bool = False
    dnsbl: tuple[str, ...] = ()  # the zones that list the client address

    @property
    def any(self) -> bool:
        return self.gtube or bool(self.dnsbl)

    def to_document(self) -> dict[str, Any]:
        return {"gtube": self.gtube, "dnsbl": list(self.dnsbl)}

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> JunkSignals:
        return cls(gtube=bool(document.get("gtube", False)),
                   dnsbl=tuple(str(zone) for zone in document.get("dnsbl", ())))


class DecidedBy(StrEnum):
    SIGNAL = "signal"  # GTUBE, a blocklist, a DMARC quarantine
    SETTINGS = "settings"  # the account's allow or block list
    HISTORY = "history"  # the account's history with the proven sender
    CONTENT = "content"  # the account's classifier
    DEFAULT = "default"  # nothing said junk


@dataclass(frozen=True)
class JunkVerdict:
    """Where the filter filed one account's copy, and why: kept with the stored message and
    shown by the API and the webmail. Reasons are short codes, `code` or `code:detail`:
    gtube, dnsbl:<zone>, dmarc-quarantine, blocked:<entry>, allowed:<entry>,
    wrote-to:<identity>, kept:<identity>, junked:<identity>, content, untrained."""

    junk: bool
    decided_by: DecidedBy
    score: float | None = None  # the classifier's probability of junk, when it was asked
    reasons: tuple[str, ...] = ()

    def to_document(self) -> dict[str, Any]:
        return {"junk": self.junk, "decided_by": str(self.decided_by),
                "score": self.score, "reasons": list(self.reasons)}

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> JunkVerdict:
        score = document.get("score")
        return cls(junk=bool(document["junk"]), decided_by=DecidedBy(document["decided_by"]),
                   score=None if score is None else float(score),
                   reasons=tuple(str(reason) for reason in document.get("reasons", ())))


@dataclass(frozen=True)
class FilterSettings:
    """An account's own rules: addresses (`a@b.example`) and domains (`b.example`), all
    lower case. They win over history and content, never over the signals. A block entry
    matches the From address or domain as claimed; an allow entry only an identity the
    message proved (else a forged From would be let through)."""

    allow: tuple[str, ...] = ()
    block: tuple[str, ...] = ()
    junk_days: int = DEFAULT_JUNK_DAYS  # Junk is emptied of messages older than this


@dataclass(frozen=True)
class SenderHistory:
    """An account's history with one identity (an address or a domain)."""

    wrote_to: bool = False  # the account sent mail to it
    junk: int = 0  # its messages the account taught as junk
    not_junk: int = 0  # ... and as not junk


@dataclass(frozen=True)
class RecipientFilterState:
    """What filing one message for an account needs of its filter, read in one request:
    the model's version and how much it learned, the account's settings, and its history
    with each identity asked for (missing: no history)."""

    model_version: int = 0  # 0: never trained
    trained_junk: int = 0
    trained_not_junk: int = 0
    settings: FilterSettings = field(default_factory=FilterSettings)
    history: Mapping[str, SenderHistory] = field(default_factory=dict)

    @property
    def trained(self) -> bool:
        return min(self.trained_junk, self.trained_not_junk) >= MIN_TRAINED_EACH


@dataclass(frozen=True)
class LearnedLesson:
    """What was learned from one message (its lesson key), kept so that it can be undone:
    the lesson, and the identities whose history it counted in."""

    lesson: Lesson
    identities: tuple[str, ...] = ()


@dataclass(frozen=True)
class HistoryChange:
    """Counts to add to (or, negative, take from) one identity's history."""

    junk: int = 0
    not_junk: int = 0
