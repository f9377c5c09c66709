"""Keeping a message's IMAP view (mailcore/imap_view) whenever its bytes are written: filed,
appended or copied over IMAP, a draft saved through the API. The view is an index of the
bytes, never the record: when it cannot be made or kept, the write it goes with succeeds
all the same, and IMAP makes the view from the bytes on the message's first FETCH."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailcore.imap_view.view import make_view
from mailcore.observability import logger
from mailcore.ports import ImapViews, KeptView

if TYPE_CHECKING:
    from mailcore.imap_view.view import ImapView


def view_of(raw: bytes, message_id: str) -> ImapView | None:
    """The view of these bytes, or None (logged) should making it fail: it is bounded and
    linear in the bytes, so a failure is a bug to see, not a message to refuse."""
    try:
        return make_view(raw)
    except Exception:  # noqa: BLE001 (the message is kept without a view; IMAP makes it)
        logger.exception("IMAP view not made; made on its first FETCH",
                         message_id=message_id, size=len(raw))
        return None


def keep_views(views: ImapViews, kept: Sequence[KeptView]) -> None:
    """Put these views; a failure is logged, never raised (the messages are already kept)."""
    if not kept:
        return
    try:
        views.put(kept)
    except Exception:  # noqa: BLE001 (each view is made again on its message's first FETCH)
        logger.exception("IMAP views not kept; made on their first FETCH", messages=len(kept))


def keep_view_of(views: ImapViews, account: str, message_id: str, raw_key: str,
                 raw: bytes) -> None:
    """Make the view of one message's bytes and put it."""
    view = view_of(raw, message_id)
    if view is not None:
        keep_views(views, [KeptView(account, message_id, raw_key, view)])


def share_view(views: ImapViews, account: str, source_id: str, copy_id: str,
               raw_key: str) -> bool:
    """Give a copy that shares its source's bytes the source's view; whether it had one in
    the current format to give."""
    try:
        shared = views.get_many(account, [source_id]).get(source_id)
    except Exception:  # noqa: BLE001 (the copy is made; its first FETCH makes its view)
        logger.exception("IMAP view of a copy's source unreadable", message_id=source_id)
        return False
    if shared is None:
        return False
    keep_views(views, [KeptView(account, copy_id, raw_key, shared)])
    return True


def forget_view(views: ImapViews, account: str, message_id: str) -> None:
    """Drop a message's view before its bytes are written again. Unlike keeping one, this
    must succeed: a view that stayed would answer for other bytes (raised)."""
    views.forget(account, message_id)

