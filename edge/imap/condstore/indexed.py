"""FETCH of what clients list a folder with (the listing's items, RFC822.SIZE, ENVELOPE,
BODYSTRUCTURE, BODY and the header fields the views keep), written a batch of messages at a
time from their stored views (mailcore/imap_view/view.py): the lines of a batch are made in
the thread that reads its views, and the event loop only writes them. Through pymap's
objects (a FetchResponse, its attributes, a value and a load hook per item, each written
through pymap's Writeable protocol checks) Thunderbird's FETCH of 10,000 messages cost the
IMAP process 3.4 s of CPU (Dovecot answers it in 0.11 s); tests/functional/
test_imap_listed_fetch.py compares every byte with pymap's answer.

A batch with a message whose view is missing or of other bytes is answered the general way
(edge/imap/backend/view_message.py), which makes and keeps the views."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pymap.bytes import WriteStream
from pymap.flags import SessionFlags
from pymap.parsing.response import UntaggedResponse
from pymap.parsing.response.specials import FetchResponse
from pymap.parsing.specials import FetchAttribute
from pymap.selected import SelectedMailbox

from edge.imap.backend.message import ImapMessage
from edge.imap.backend.view_message import BATCH, ViewBatches, view_serves
from edge.imap.condstore.fetch import CondstoreAttributes
from edge.imap.condstore.listed import LISTED, FlagsWriter, listed_item
from mailcore.imap_view.view import KEPT_FIELDS, ImapView

_FROM_VIEW = frozenset({b"ENVELOPE", b"BODYSTRUCTURE"})


def _indexed(attribute: FetchAttribute) -> bool:
    name, section = attribute.value, attribute.section
    if attribute.partial is not None:
        return False
    if section is None:
        return name in LISTED or name in _FROM_VIEW or name in (b"BODY", b"RFC822.SIZE")
    return (name == b"BODY.PEEK" and not section.parts
            and section.specifier == b"HEADER.FIELDS"
            and all(field.lower() in KEPT_FIELDS for field in section.headers or ()))


def only_indexed(attributes: Sequence[FetchAttribute]) -> bool:
    return all(_indexed(attribute) for attribute in attributes)


def _item(attribute: FetchAttribute, message: ImapMessage, view: ImapView,
          flags: FlagsWriter, names: dict[FetchAttribute, bytes]) -> bytes:
    name = attribute.value
    if name in LISTED:
        return listed_item(name, message, flags)
    if name == b"RFC822.SIZE":
        return b"RFC822.SIZE %d" % message.entry.size
    if name == b"ENVELOPE":
        return b"ENVELOPE " + view.envelope
    if name == b"BODYSTRUCTURE":
        return b"BODYSTRUCTURE " + view.body_structure
    if attribute.section is None:
        return b"BODY " + view.body
    data = view.header_fields(list(attribute.section.headers or ()))
    return names[attribute] + b" {%d}\r\n" % len(data) + data


class IndexedFetch:
    """The FETCH answers of a command's messages, one IndexedFetches per BATCH: each
    batch's views read (the next batch's while one is written) and its lines made on the
    thread pool."""

    def __init__(self, numbered: Sequence[tuple[int, ImapMessage]],
                 attributes: Sequence[FetchAttribute], selected: SelectedMailbox) -> None:
        self._numbered = numbered
        self._attributes = list(dict.fromkeys(attributes))
        self._selected = selected
        # A batch's lines, or the views read for it when some message has none of its
        # bytes (then the batch is answered the general way, from those views).
        self._lines: dict[int, asyncio.Future[bytes | dict[str, ImapView]]] = {}

    def responses(self) -> list[IndexedFetches]:
        return [IndexedFetches(self, index)
                for index in range((len(self._numbered) + BATCH - 1) // BATCH)]

    def _batch(self, index: int) -> Sequence[tuple[int, ImapMessage]]:
        return self._numbered[index * BATCH:(index + 1) * BATCH]

    def _start(self, index: int) -> None:
        batch = self._batch(index)
        if index in self._lines or not batch:
            return
        storage = batch[0][1].storage
        work = storage.blocking(_lines, batch, self._attributes, self._selected.session_flags)
        future = asyncio.ensure_future(work)
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._lines[index] = future

    async def lines(self, index: int) -> bytes | dict[str, ImapView]:
        self._start(index)
        self._start(index + 1)
        try:
            return await self._lines[index]
        finally:
            del self._lines[index]

    def general(self, index: int, known: dict[str, ImapView]) -> list[FetchResponse]:
        """The batch's answers the general way (views made from the bytes and kept)."""
        batch = self._batch(index)
        messages = [message for _, message in batch]
        views = ViewBatches(messages, self._attributes, known) \
            if view_serves(self._attributes) else None
        responses = []
        for position, (seq, message) in enumerate(batch):
            attributes = CondstoreAttributes(message, self._selected, self._attributes, views,
                                             position)
            responses.append(FetchResponse(seq, attributes, writing_hook=attributes.load_hook()))
        return responses


def _lines(batch: Sequence[tuple[int, ImapMessage]], attributes: Sequence[FetchAttribute],
           session_flags: SessionFlags) -> bytes | dict[str, ImapView]:
    """The batch's FETCH lines, or the views read when a message has none of its listed
    bytes."""
    storage, account = batch[0][1].storage, batch[0][1].account
    needs_view = any(attribute.value not in LISTED and attribute.value != b"RFC822.SIZE"
                     for attribute in attributes)
    needs_fields = any(attribute.section is not None for attribute in attributes)
    views = (storage.views.get_many(account, [message.entry.message_id for _, message in batch])
             if needs_view else {})
    flags = FlagsWriter(session_flags)
    # How each item is named in the answer, written once (pymap writes it per message).
    names = {attribute: bytes(attribute.for_response) for attribute in attributes}
    lines = []
    for seq, message in batch:
        view = views.get(message.entry.message_id)
        if needs_view and (view is None or view.size != message.entry.size
                           or (needs_fields and not view.complete)):
            return views
        items = b" ".join(_item(attribute, message, view, flags, names)  # type: ignore[arg-type]
                          for attribute in attributes)
        lines.append(b"* %d FETCH (%b)\r\n" % (seq, items))
    return b"".join(lines)


class IndexedFetches(UntaggedResponse):
    """One batch's FETCH answers. Never merged with another FETCH of the same message (two
    answers for one message are allowed, RFC 3501 7.4.2); MODSEQ is in it when asked."""

    def __init__(self, fetch: IndexedFetch, index: int) -> None:
        super().__init__()
        self._fetch = fetch
        self._index = index
        self._written = b""

    async def async_write(self, writer: WriteStream) -> None:
        lines = await self._fetch.lines(self._index)
        if isinstance(lines, bytes):
            writer.write(lines)
            self._written = lines
            return
        for response in self._fetch.general(self._index, lines):
            await response.async_write(writer)

    def write(self, writer: WriteStream) -> None:
        # Answers are written by async_write (the views read first); this is what was
        # written, for a log of the response.
        writer.write(self._written)
