"""The bounds within which a message is parsed for display. The defaults are what filing,
the API and IMAP's APPEND use; tests pass others instead of changing these."""

from __future__ import annotations

from dataclasses import dataclass

from mailcore.domain.mime_limits import MAX_NESTING, MAX_PARTS


@dataclass(frozen=True)
class ParseLimits:
    # Bounds on what the email package is given (issue: hostile MIME). The part and nesting
    # bounds are shared with the IMAP edge (domain/mime_limits.py says why these); here
    # max_parts bounds the lines that start with "--" and max_nesting the multipart/* and
    # message/* declarations. A header field of 8,000 quote characters takes 0.6 s to parse
    # (superlinear), and nested comments recurse.
    max_parts: int = MAX_PARTS
    max_nesting: int = MAX_NESTING
    max_header_field: int = 8 * 1024  # a longer field is shown unparsed
    max_header_block: int = 1024 * 1024  # past this the header lines are not read for display
    # The email package reads a Content-Type or Content-Disposition field again each time a
    # part's type, boundary or parameters are asked for, about 0.3 ms per parameter per
    # read: 4,000 parameters (RFC 2231 continuations or plain ones, in one field or spread
    # over the parts) took 1.3 s, 16,000 took 5 s, and in the IMAP edge's threads no clock
    # stops it (an APPEND of 20,000 held a worker and the GIL for over 10 s). Real mail has
    # a few per part.
    max_content_parameters: int = 4000  # in all Content-Type/-Disposition fields together
    parse_seconds: float = 5.0  # wall-clock backstop for whatever the bounds above miss
    # Memory in proportion to the message (issue 14): the email package holds a message
    # several times over while it parses (161 MiB traced for a 24.4 MiB message with three
    # binary attachments). A message this large is parsed lean (parsing/lean.py).
    lean_parse_from: int = 1024 * 1024
    # A leaf body this large is left out of the lean parse: past its token's size, and
    # small enough that a thousand parts of one-character lines are not a thousand lists
    # of lines.
    left_out_from: int = 256
    decode_chunk: int = 1024 * 1024  # characters of a left-out body decoded at a time


PARSE_LIMITS = ParseLimits()
