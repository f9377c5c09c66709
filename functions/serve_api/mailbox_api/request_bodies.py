"""Request bodies of the mailbox API, checked field by field (errors name the field).

openapi.yaml describes the same shapes; this is where they are enforced.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from mailcore.domain.compose import AttachmentData, Composition, is_one_line
from mailcore.domain.junk import FilterSettings
from mailcore.errors import InvalidRequest
from mailcore.services import junk_settings
from mailcore.services.changes import MessageChange
from mailcore.services.composing import ComposeRequest, UploadRef

MAX_ADDRESSES = 100
MAX_SUBJECT = 998  # RFC 5322's line limit; longer subjects are folded anyway
MAX_FILENAME = 255
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")  # RFC 6838 names


def _unknown_fields(body: dict[str, Any], allowed: set[str]) -> None:
    for name in body:
        if name not in allowed:
            raise InvalidRequest(f"unknown field {name!r}", name)


def string(body: dict[str, Any], name: str, *, required: bool = False,
           max_length: int | None = None) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"{name} is required", name)
        return None
    if not isinstance(value, str) or (required and not value):
        raise InvalidRequest(f"{name} must be a{' non-empty' if required else ''} string", name)
    if max_length is not None and len(value) > max_length:
        raise InvalidRequest(f"{name} has at most {max_length} characters", name)
    return value


def _boolean(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise InvalidRequest(f"{name} must be true or false", name)
    return value


def _addresses(body: dict[str, Any], name: str) -> tuple[str, ...]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequest(f"{name} must be a list of addresses", name)
    if len(value) > MAX_ADDRESSES:
        raise InvalidRequest(f"{name} has at most {MAX_ADDRESSES} addresses", name)
    return tuple(value)


def _attachment(value: Any, index: int) -> AttachmentData | UploadRef:
    field = f"attachments[{index}]"
    if not isinstance(value, dict):
        raise InvalidRequest("an attachment is an object", field)
    _unknown_fields(value, {"filename", "content_type", "content", "upload_id"})
    filename = string(value, "filename", required=True, max_length=MAX_FILENAME)
    if filename is not None and not is_one_line(filename):
        raise InvalidRequest("a filename is one line without control characters",
                             f"{field}.filename")
    content_type = string(value, "content_type") or "application/octet-stream"
    if not _MEDIA_TYPE.fullmatch(content_type):
        raise InvalidRequest("content_type is type/subtype", f"{field}.content_type")
    assert filename is not None
    if ("content" in value) == ("upload_id" in value):
        raise InvalidRequest("an attachment has content or an upload_id, not both", field)
    upload_id = value.get("upload_id")
    if upload_id is not None:
        if not isinstance(upload_id, str):
            raise InvalidRequest("upload_id must be a string", f"{field}.upload_id")
        return UploadRef(upload_id, filename, content_type.lower())
    content = value.get("content")
    try:
        if not isinstance(content, str):
            raise ValueError("not a string")
        data = base64.b64decode(content, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise InvalidRequest("content must be base64", f"{field}.content") from exc
    return AttachmentData(filename, content_type.lower(), data)


def compose_request(body: dict[str, Any]) -> ComposeRequest:
    _unknown_fields(body, {"to", "cc", "bcc", "subject", "text", "html", "attachments",
                           "in_reply_to", "forward_of"})
    attachments = body.get("attachments", [])
    if not isinstance(attachments, list):
        raise InvalidRequest("attachments must be a list", "attachments")
    if body.get("in_reply_to") is not None and body.get("forward_of") is not None:
        raise InvalidRequest("a message replies or forwards, not both", "forward_of")
    return ComposeRequest(
        message=Composition(
            to=_addresses(body, "to"),
            cc=_addresses(body, "cc"),
            bcc=_addresses(body, "bcc"),
            subject=_header_text(body, "subject"),
            text=string(body, "text") or "",
            html=string(body, "html"),
            attachments=tuple(_attachment(value, index)
                              for index, value in enumerate(attachments)),
        ),
        in_reply_to=string(body, "in_reply_to"),
        forward_of=string(body, "forward_of"),
    )


def _header_text(body: dict[str, Any], name: str) -> str | None:
    value = string(body, name, max_length=MAX_SUBJECT)
    if value is not None and not is_one_line(value):
        raise InvalidRequest(f"{name} is one line without control characters", name)
    return value


def message_change(body: dict[str, Any]) -> MessageChange:
    _unknown_fields(body, {"seen", "flagged", "answered", "mailbox", "junk"})
    change = MessageChange(seen=_boolean(body, "seen"), flagged=_boolean(body, "flagged"),
                           answered=_boolean(body, "answered"),
                           mailbox=string(body, "mailbox", required="mailbox" in body),
                           junk=_boolean(body, "junk"))
    if change == MessageChange():
        raise InvalidRequest("nothing to change: give seen, flagged, answered, junk or "
                             "mailbox", "seen")
    return change


def junk_filter_settings(body: dict[str, Any]) -> FilterSettings:
    _unknown_fields(body, {"allow", "block", "junk_days"})
    lists = []
    for name in ("allow", "block"):
        value = body.get(name)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise InvalidRequest(f"{name} must be a list of addresses and domains", name)
        lists.append(value)
    days = body.get("junk_days")
    # bool is an int in Python; true is not a number of days.
    if not isinstance(days, int) or isinstance(days, bool):
        raise InvalidRequest("junk_days must be a whole number of days", "junk_days")
    return junk_settings.settings_of(lists[0], lists[1], days)
