"""SEARCH's criteria (RFC 3501 6.4.4): each search key made one test of a message of the
selected folder, its bytes read only when a criterion needs them."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pymap.interfaces.message import MessageInterface
from pymap.parsing.specials import SearchKey, SequenceSet
from pymap.parsing.specials.flag import (
    Answered,
    Deleted,
    Draft,
    Flag,
    Flagged,
    Recent,
    Seen,
)
from pymap.search import SearchCriteria, SearchParams

from mailcore.imap_view.search_text import (
    MessageText,
    addresses,
    decode_words,
    fold,
    sent_day,
    utf8_text,
)
from mailcore.imap_view.view import KEPT_FIELDS, ImapView

_SYSTEM_FLAGS = {b"ANSWERED": Answered, b"DELETED": Deleted, b"DRAFT": Draft,
                 b"FLAGGED": Flagged, b"RECENT": Recent, b"SEEN": Seen}
_ADDRESS_FIELDS = {b"FROM": b"from", b"TO": b"to", b"CC": b"cc", b"BCC": b"bcc"}
_LWSP = re.compile(rb"[ \t\r\n]+")


def _no_view() -> ImapView | None:
    return None


@dataclass
class Candidate:
    """A message of the selected folder as SEARCH tests it. Header criteria read its
    stored view (mailcore/imap_view/view.py) when it keeps the field; its bytes are read
    only when a criterion needs more (BODY, TEXT, a field not kept) or it has no view."""

    seq: int
    message: MessageInterface
    flags: frozenset[Flag]
    size: int
    read_raw: Callable[[], bytes | None]  # None: the message is gone
    read_view: Callable[[], ImapView | None] = _no_view  # None: no view (yet)
    _text: MessageText | None = field(default=None, repr=False)
    _read: bool = field(default=False, repr=False)
    _view: ImapView | None = field(default=None, repr=False)
    _view_read: bool = field(default=False, repr=False)

    @property
    def uid(self) -> int:
        return self.message.uid

    @property
    def internal_day(self) -> date:
        """The internal date's day in UTC, as Dovecot compares it on a server in UTC."""
        when = self.message.internal_date or datetime.fromtimestamp(0, UTC)
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC).date()

    @property
    def text(self) -> MessageText | None:
        if not self._read:
            raw = self.read_raw()
            self._text = MessageText(raw) if raw is not None else None
            self._read = True
        return self._text

    @property
    def view(self) -> ImapView | None:
        if not self._view_read:
            self._view = self.read_view()
            self._view_read = True
        return self._view

    def fields(self, name: bytes) -> list[bytes]:
        """A header field's values as SEARCH reads them (search_text.MessageText.fields):
        from the view when it keeps the field, else from the bytes."""
        if name in KEPT_FIELDS:
            view = self.view
            if view is not None and view.keeps((name,)):
                return view.search_values(name)
        text = self.text
        return text.fields(name) if text is not None else []

    @property
    def sent_on(self) -> date:
        return sent_day(self.fields(b"date"))


Test = Callable[[Candidate], bool]


def criterion(key: SearchKey, params: SearchParams) -> Test:
    """The test a search key makes of a message (RFC 3501 6.4.4)."""
    test = _positive(key, params)
    if key.inverse:
        return lambda candidate: not test(candidate)
    return test


def all_of(keys: frozenset[SearchKey] | list[SearchKey], params: SearchParams) -> Test:
    # What reads a message's bytes comes last: `FROM x BODY y` reads only the bytes of
    # the messages from x (the keys come as a set, in no order of their own).
    tests = [criterion(key, params) for key in sorted(keys, key=_reads_bytes)]
    return lambda candidate: all(test(candidate) for test in tests)


def _reads_bytes(key: SearchKey) -> bool:
    name = key.value
    if name in (b"KEYSET", b"OR"):
        nested = key.filter_key_set if name == b"KEYSET" else key.filter_key_or
        return any(_reads_bytes(inner) for inner in nested)
    if name == b"HEADER":
        return key.filter_header[0].lower().encode("utf-8", "replace") not in KEPT_FIELDS
    return name in (b"BODY", b"TEXT")


def _positive(key: SearchKey, params: SearchParams) -> Test:  # one per key
    name = key.value
    if name == b"KEYSET":
        return all_of(list(key.filter_key_set), params)
    if name == b"OR":
        left, right = (criterion(side, params) for side in key.filter_key_or)
        return lambda candidate: left(candidate) or right(candidate)
    if name == b"SEQSET":
        return _in_set(key.filter_sequence_set, params)
    if name == b"ALL":
        return lambda candidate: True
    if name.removeprefix(b"UN") in _SYSTEM_FLAGS:
        flag, wanted = _SYSTEM_FLAGS[name.removeprefix(b"UN")], not name.startswith(b"UN")
        return lambda candidate: (flag in candidate.flags) is wanted
    if name == b"NEW":
        return lambda candidate: Recent in candidate.flags and Seen not in candidate.flags
    if name == b"OLD":
        return lambda candidate: Recent not in candidate.flags
    if name in (b"KEYWORD", b"UNKEYWORD"):
        keyword, wanted = key.filter_flag.value.lower(), name == b"KEYWORD"
        return lambda candidate: any(flag.value.lower() == keyword
                                     for flag in candidate.flags) is wanted
    if name in (b"BEFORE", b"ON", b"SINCE"):
        return _on_day(name, key.filter_datetime.date(),
                       lambda candidate: candidate.internal_day)
    if name in (b"SENTBEFORE", b"SENTON", b"SENTSINCE"):
        return _on_day(name.removeprefix(b"SENT"), key.filter_datetime.date(),
                       lambda candidate: candidate.sent_on)
    if name in (b"LARGER", b"SMALLER"):
        size, larger = key.filter_int, name == b"LARGER"
        return lambda candidate: candidate.size > size if larger else candidate.size < size
    if name in (b"SUBJECT", *_ADDRESS_FIELDS, b"HEADER"):
        return _field_test(name, key)
    if name in (b"BODY", b"TEXT"):
        wanted_text, with_headers = fold(key.filter_str), name == b"TEXT"
        return lambda candidate: _text_contains(candidate.text, wanted_text, with_headers)
    # Anything else (EMAILID, THREADID) tests the message alone: pymap's test does.
    pymap_test = SearchCriteria.of(SearchKey(name, key.filter), params)
    return lambda candidate: pymap_test.matches(candidate.seq, candidate.message,
                                                 None)  # type: ignore[arg-type]


def _on_day(comparison: bytes, day: date, day_of: Callable[[Candidate], date]) -> Test:
    if comparison == b"BEFORE":
        return lambda candidate: day_of(candidate) < day
    if comparison == b"ON":
        return lambda candidate: day_of(candidate) == day
    return lambda candidate: day_of(candidate) >= day


def _in_set(sequence_set: SequenceSet, params: SearchParams) -> Test:
    """Membership by range: "1:4294967295" is two numbers, not four billion."""
    highest = params.max_uid if sequence_set.uid else params.max_seq
    ranges: list[tuple[int, int]] = []
    for element in sequence_set.sequences:
        low, high = element if isinstance(element, tuple) else (element, element)
        low, high = (highest if not isinstance(end, int) else end for end in (low, high))
        ranges.append((min(low, high), max(low, high)))
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for low, high in ranges:
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    starts = [low for low, _ in merged]

    def contains(candidate: Candidate) -> bool:
        number = candidate.uid if sequence_set.uid else candidate.seq
        index = bisect.bisect_right(starts, number) - 1
        return index >= 0 and number <= merged[index][1]
    return contains


def _field_test(name: bytes, key: SearchKey) -> Test:
    if name == b"HEADER":
        field_name, value = key.filter_header
        field_bytes = field_name.lower().encode("utf-8", "replace")
        def rewrite(raw: bytes) -> str:
            return decode_words(utf8_text(raw))
    else:
        value = key.filter_str
        field_bytes = _ADDRESS_FIELDS.get(name, b"subject")
        if name == b"SUBJECT":
            def rewrite(raw: bytes) -> str:
                return decode_words(utf8_text(_LWSP.sub(b" ", raw)))
        else:
            def rewrite(raw: bytes) -> str:
                return decode_words(addresses(utf8_text(raw)))
    wanted = fold(value)

    def test(candidate: Candidate) -> bool:
        values = candidate.fields(field_bytes)
        if not wanted:
            return bool(values)  # an empty string: is the field there at all
        return any(wanted in fold(rewrite(raw)) for raw in values)
    return test


def _text_contains(text: MessageText | None, wanted: str, with_headers: bool) -> bool:
    if text is None:
        return False
    if not wanted:
        return True
    return any(wanted in body for body in text.bodies) or (
        with_headers and any(wanted in line for line in text.header_lines))
