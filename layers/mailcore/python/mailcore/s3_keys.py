"""Where each thing lives in the message bucket: the one module that spells its keys.

  messages/<id>/message.eml    accepted mail (SMTP, the API's sends, DSNs): the only objects
                               the inbound queue is notified of, so only these are filed
  messages/<id>/envelope.json  its envelope, when too large for the object's metadata
  <raw prefix>/imap-view       beside any message's bytes: their IMAP view, when too large
                               for a DynamoDB item (thousands of parts)
  drafts/<id>/message.eml      a draft
  appended/<id>/message.eml    a message a client put into a folder itself (IMAP APPEND)
  parts/<id>/<index>           a large decoded part of an accepted message (a cache)
  uploads/<owner>/<id>         an upload waiting for a message to take it in

Beside the ports, not in an adapter: filing (a service) reads the accepted message's id
from the key it is notified of, and both stores of the MessageStore port (S3 and the one
in memory) keep this one layout. template.yaml cannot import it:
tests/unit/test_storage_keys.py checks its notification filter, lifecycle rules and IAM
resources against these prefixes, and finds any other place that spells them.
"""

from __future__ import annotations

import hashlib

from mailcore.domain.ids import is_message_id

MESSAGES_PREFIX = "messages/"
DRAFTS_PREFIX = "drafts/"
APPENDED_PREFIX = "appended/"
PARTS_PREFIX = "parts/"
UPLOADS_PREFIX = "uploads/"
PREFIXES = (MESSAGES_PREFIX, DRAFTS_PREFIX, APPENDED_PREFIX, PARTS_PREFIX, UPLOADS_PREFIX)
# What the bucket's lifecycle rules expire after a day: uploads wait for a message to take
# them in, decoded parts are a cache.
EXPIRING_PREFIXES = (UPLOADS_PREFIX, PARTS_PREFIX)
MESSAGE_SUFFIX = "/message.eml"
ENVELOPE_SUFFIX = "/envelope.json"
IMAP_VIEW_SUFFIX = "/imap-view"
# The envelope is written first and the message last, and only the message key triggers
# filing (the bucket's notification filter), so a half-written message is never filed.
FILED_PREFIX, FILED_SUFFIX = MESSAGES_PREFIX, MESSAGE_SUFFIX


def message_key(message_id: str) -> str:
    return f"{MESSAGES_PREFIX}{message_id}{MESSAGE_SUFFIX}"


def envelope_key(message_id: str) -> str:
    return f"{MESSAGES_PREFIX}{message_id}{ENVELOPE_SUFFIX}"


def imap_view_object_key(raw_key: str) -> str:
    """Where a message's IMAP view goes when too large for its item: beside the bytes it
    describes (copies share both), deleted with them."""
    return raw_key.removesuffix(MESSAGE_SUFFIX) + IMAP_VIEW_SUFFIX


def accepted_objects_prefix(message_id: str) -> str:
    """What every object of one accepted message (the message, its envelope) starts with."""
    return f"{MESSAGES_PREFIX}{message_id}/"


def message_id_of_key(key: str) -> str | None:
    """The accepted message's id, or None for any other key (a draft, a part, garbage)."""
    if not (key.startswith(MESSAGES_PREFIX) and key.endswith(MESSAGE_SUFFIX)):
        return None
    message_id = key[len(MESSAGES_PREFIX) : -len(MESSAGE_SUFFIX)]
    return message_id if is_message_id(message_id) else None


def draft_key(draft_id: str) -> str:
    return f"{DRAFTS_PREFIX}{draft_id}{MESSAGE_SUFFIX}"


def appended_key(message_id: str) -> str:
    """Like accepted mail its bytes never change, but it is not mail to file or deliver."""
    return f"{APPENDED_PREFIX}{message_id}{MESSAGE_SUFFIX}"


def part_key(accepted_id: str, index: int) -> str:
    """A large decoded part of an accepted (never changing) message."""
    return f"{PARTS_PREFIX}{accepted_id}/{index}"


def upload_key(account: str, upload_id: str) -> str:
    """Under its owner (a digest of the address): another account's upload id finds
    nothing."""
    owner = hashlib.sha256(account.encode()).hexdigest()[:32]
    return f"{UPLOADS_PREFIX}{owner}/{upload_id}"
