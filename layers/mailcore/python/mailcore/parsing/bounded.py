"""Reading a message for display, bounded whatever the input, and never raising: a message
the email package cannot make sense of, or one too complex to parse within its limits, is
still a message, summarised as far as possible from its header lines and marked with its
parse problem. Its raw bytes are kept and served whole.

Services read messages through summarise, read_content and attachment_content; each takes
the limits (parsing/limits.py), today's by default."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from mailcore.domain.message import (
    AttachmentContent,
    MessageContent,
    MessageSummary,
    attachment_of,
    content_of,
    summary_of,
)
from mailcore.parsing.clock import ParseTimeout, time_limit
from mailcore.parsing.header_lines import (
    content_from_header_lines,
    header_block_size,
    summary_from_header_lines,
)
from mailcore.parsing.lean import lean_or_whole
from mailcore.parsing.limits import PARSE_LIMITS, ParseLimits

_T = TypeVar("_T")
# A declaration that opens a level; folded or commented ones escape this count, and then
# the recursion limit and the clock still bound the parse (see bounded).
_NESTING = re.compile(rb"(?i)(?:\A|\n)content-type[ \t]*:[ \t]*(?:\r?\n[ \t]+)?"
                      rb"(?:multipart|message)/")
# A Content-Type or Content-Disposition field, folded lines and all (linear: each
# repetition ends at a line break).
_CONTENT_FIELD = re.compile(rb"(?im)^content-(?:type|disposition)[ \t]*:"
                            rb"(?:[^\n]*\n[ \t])*[^\n]*")


def summarise(raw: bytes, limits: ParseLimits = PARSE_LIMITS) -> MessageSummary:
    return bounded(
        raw,
        lambda whole: lean_or_whole(
            whole, lambda parsed: summary_of(parsed, limits.max_header_field), limits),
        lambda whole, problem: summary_from_header_lines(whole, problem, limits),
        limits)


def read_content(raw: bytes, limits: ParseLimits = PARSE_LIMITS) -> MessageContent:
    return bounded(
        raw,
        lambda whole: lean_or_whole(
            whole, lambda parsed: content_of(parsed, limits.max_header_field), limits),
        lambda whole, problem: content_from_header_lines(whole, limits),
        limits)


def attachment_content(raw: bytes, index: int,
                       limits: ParseLimits = PARSE_LIMITS) -> AttachmentContent | None:
    """The decoded attachment at `index` (as numbered by read_content), or None."""
    return bounded(
        raw,
        lambda whole: lean_or_whole(whole, lambda parsed: attachment_of(parsed, index), limits),
        lambda whole, problem: None,
        limits)


def bounded(raw: bytes, parsed: Callable[[bytes], _T], fallback: Callable[[bytes, str], _T],
            limits: ParseLimits) -> _T:
    """`parsed(raw)` within the limits, else `fallback(raw, problem)` from header lines."""
    problem = complexity_problem(raw, limits)
    if problem is not None:
        return fallback(raw, problem)
    try:
        with time_limit(limits.parse_seconds):
            return parsed(raw)
    except ParseTimeout:
        return fallback(raw, "ParseTimeout")
    except RecursionError:
        return fallback(raw, "TooDeeplyNested")
    except Exception:  # noqa: BLE001
        # The promise is "every accepted message is filed and readable": a parser bug
        # nobody foresaw must degrade this one message, not fail its filing forever.
        return fallback(raw, "Unparseable")


def complexity_problem(raw: bytes, limits: ParseLimits) -> str | None:
    """Why `raw` is beyond what is parsed structurally, or None. Counting costs one pass."""
    if raw.count(b"\n--") + raw.startswith(b"--") > limits.max_parts:
        return "TooManyParts"
    for declarations, _ in enumerate(_NESTING.finditer(raw), start=1):
        if declarations > limits.max_nesting:
            return "TooDeeplyNested"
    if header_block_size(raw) > limits.max_header_block:
        return "OversizedHeader"
    parameters = 0
    for field in _CONTENT_FIELD.finditer(raw):
        if field.end() - field.start() > limits.max_header_field:
            return "OversizedContentField"
        parameters += field.group().count(b";")
        if parameters > limits.max_content_parameters:
            return "TooManyParameters"
    return None
