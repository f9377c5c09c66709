"""Content-Type and Content-Disposition as a part's structure reads them: type and subtype
(comments left out), and parameters, RFC 2231 continuations joined, within bounds on what
one field costs to read."""

from __future__ import annotations

import re

from mailcore.imap_view.strings import QUOTED_PAIR, without_comments

_PARAMETER = re.compile(rb';[ \t\r\n]*+([^=; \t\r\n]++)[ \t\r\n]*+=[ \t\r\n]*+'
                        rb'(?:"((?:[^"\\]|\\.)*+)"|([^; \t\r\n]*+))', re.S)
# Bounds on what one field costs to read (hostile fields of megabytes are read in part):
# legitimate Content-Type and -Disposition fields hold a few parameters in under 1 KiB
# (a long file name in RFC 2231 sections a few KiB).
MAX_PARAMETERS = 200
MAX_PARAMETER_TEXT = 64 * 1024
MAX_TYPE_TEXT = 1024  # type/subtype, disposition type, Content-Language


def content_type(value: bytes | None,
                 default: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
    value = value or default
    semicolon = value.find(b";")
    kind = value if semicolon < 0 else value[:semicolon]
    major, _, minor = without_comments(kind[:MAX_TYPE_TEXT]).partition(b"/")
    major, minor = major.strip(), minor.strip()
    if not major or not minor:
        major, _, minor = default.partition(b"/")
        semicolon = -1
    found = read_parameters(value[semicolon:]) if semicolon >= 0 else []
    return major, minor, joined_parameters(found)


def read_parameters(text: bytes) -> list[tuple[bytes, bytes]]:
    """The `;` name=value pairs of `text` (from a Content-Type's or -Disposition's first
    ";"), in order. Each Python step is a parameter found: the search skips whatever is
    not one without coming back (no optional white space on both sides of a ";" to try
    again at each space, which is quadratic in a long run of them), and a field gives at
    most MAX_PARAMETERS from its first MAX_PARAMETER_TEXT octets."""
    found: list[tuple[bytes, bytes]] = []
    position, text = 0, text[:MAX_PARAMETER_TEXT]
    while len(found) < MAX_PARAMETERS:
        match = _PARAMETER.search(text, position)
        if match is None:
            break
        name, quoted, plain = match.groups()
        found.append((name, QUOTED_PAIR.sub(rb"\1", quoted) if quoted is not None else plain))
        position = match.end()
    return found


_ATTRIBUTE_SPECIALS = frozenset(b"*'%()<>@,;:\\\"/[]?= ")


def joined_parameters(parameters: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """RFC 2231 continuations (name*0, name*1*, ...) joined into one name or name*, as
    Dovecot joins them: plain parameters first, in order, then the joined ones by name; a
    run with a missing section stays as it came."""
    plain: list[tuple[bytes, bytes]] = []
    sections: dict[bytes, list[tuple[int, bool, bytes]]] = {}
    names: dict[bytes, bytes] = {}  # each name as first written (Dovecot keeps the case)
    for name, value in parameters:
        key, star, suffix = name.partition(b"*")
        # name* is section 0, extended; name*n and name*n* are section n.
        extended = not suffix or suffix.endswith(b"*")
        number = suffix[:-1] if suffix.endswith(b"*") else suffix
        if not star or not key or (number and not number.isdigit()) or len(number) > 9:
            plain.append((name, value))
            continue
        names.setdefault(key.lower(), key)
        sections.setdefault(key.lower(), []).append((int(number or b"0"), extended, value))
    for lower in sorted(sections):
        key = names[lower]
        run = sorted(sections[lower], key=lambda item: item[0])
        if [number for number, _, _ in run] != list(range(len(run))):
            plain += [(key + b"*%d" % number + (b"*" if extended else b""), value)
                      for number, extended, value in run]
            continue
        any_extended = any(extended for _, extended, _ in run)
        pieces = [b"''"] if any_extended and not run[0][1] else []
        for _, extended, value in run:
            pieces.append(value if extended or not any_extended else _percent(value))
        plain.append((key + (b"*" if any_extended else b""), b"".join(pieces)))
    return plain


def _percent(value: bytes) -> bytes:
    return b"".join(b"%%%02X" % byte if byte in _ATTRIBUTE_SPECIALS or byte < 0x20
                    or byte > 0x7E else bytes((byte,)) for byte in value)
