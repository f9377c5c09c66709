"""Beyond the bounds: a message summarised from its header lines, read without the email
package, in time linear in the input."""

from __future__ import annotations

import email.header

from mailcore.domain.message import (
    PARSE_ERRORS,
    MessageContent,
    MessageSummary,
    iso_date,
    joined_problems,
    thread_id,
)
from mailcore.parsing.limits import ParseLimits

_DISPLAY_FIELDS = frozenset({"from", "to", "cc", "subject", "date", "message-id",
                             "in-reply-to", "references"})


def summary_from_header_lines(raw: bytes, problem: str, limits: ParseLimits) -> MessageSummary:
    fields = header_lines(raw, limits)

    def field(name: str) -> str | None:
        return fields.get(name.lower())

    problems = [problem]
    return MessageSummary(
        from_=field("From") or "",
        to=tuple(filter(None, [field("To")])),
        cc=tuple(filter(None, [field("Cc")])),
        subject=field("Subject") or "",
        date=iso_date(field("Date"), problems),
        message_id_header=field("Message-ID"),
        snippet="",
        has_attachments=False,
        parse_problem=joined_problems(problems),
        thread_id=thread_id(field),
    )


def content_from_header_lines(raw: bytes, limits: ParseLimits) -> MessageContent:
    fields = header_lines(raw, limits)
    return MessageContent(text=None, html=None, attachments=(),
                          in_reply_to=fields.get("in-reply-to"),
                          references=fields.get("references"))


def header_lines(raw: bytes, limits: ParseLimits) -> dict[str, str]:
    """The first of each displayed field among the header lines (at most max_header_block
    bytes of them), unfolded and with encoded words decoded, each at most max_header_field
    characters."""
    block = raw[:min(header_block_size(raw), limits.max_header_block)]
    fields: dict[str, str] = {}
    name, value = "", ""
    for line in [*block.replace(b"\r\n", b"\n").split(b"\n"), b""]:
        if line[:1] in (b" ", b"\t") and name:
            if len(value) < limits.max_header_field:
                value += " " + line.strip().decode("utf-8", "replace")
            continue
        if name in _DISPLAY_FIELDS and name not in fields:
            fields[name] = _decoded_words(value.strip()[:limits.max_header_field])
        head, colon, rest = line.partition(b":")
        name = head.strip().decode("ascii", "replace").lower() if colon else ""
        value = rest.decode("utf-8", "replace")
    return fields


def header_block_size(raw: bytes) -> int:
    ends = [end for end in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if end >= 0]
    return min(ends) if ends else len(raw)


def _decoded_words(value: str) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except PARSE_ERRORS:
        return value


def fields_named(raw: bytes, names: frozenset[str], limits: ParseLimits,
                 max_fields: int = 100) -> list[tuple[str, str]]:
    """Every field with one of these (lower-case) names, top to bottom, as (name, value):
    unfolded and otherwise as written (no encoded words decoded: Authentication-Results
    and addresses are read as they are). At most max_fields of them, each at most
    max_header_field characters, from at most max_header_block bytes of header lines."""
    block = raw[:min(header_block_size(raw), limits.max_header_block)]
    found: list[tuple[str, str]] = []
    name, value = "", ""
    for line in [*block.replace(b"\r\n", b"\n").split(b"\n"), b""]:
        if line[:1] in (b" ", b"\t") and name:
            if name in names and len(value) < limits.max_header_field:
                value += line.decode("utf-8", "replace")
            continue
        if name in names:
            found.append((name, value.strip()[:limits.max_header_field]))
            if len(found) == max_fields:
                break
        head, colon, rest = line.partition(b":")
        name = head.strip().decode("ascii", "replace").lower() if colon else ""
        value = rest.decode("utf-8", "replace") if name in names else ""
    return found
