"""How a file's name travels in a Content-Disposition header: on a part kept in S3, and
on the API's downloads."""

from __future__ import annotations

from urllib.parse import quote


def attachment_disposition(filename: str) -> str:
    """Content-Disposition for a download (RFC 6266): an ASCII fallback and the exact
    name in RFC 5987 encoding."""
    fallback = "".join(char if char.isascii() and char.isprintable() and char not in '"\\'
                       else "_" for char in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"
