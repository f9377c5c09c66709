"""CONDSTORE's answers (RFC 7162 3.1): ENABLE, SELECT's HIGHESTMODSEQ, FETCH with MODSEQ and
CHANGEDSINCE, STORE with UNCHANGEDSINCE, SEARCH MODSEQ and STATUS HIGHESTMODSEQ; and, once a
client has used CONDSTORE, the MODSEQ of every FETCH FLAGS it is sent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from pymap.bytes import MaybeBytes
from pymap.concurrent import Event
from pymap.imap.state import ConnectionState
from pymap.parsing.command import Command
from pymap.parsing.command.auth import SelectCommand, StatusCommand
from pymap.parsing.command.select import FetchCommand, IdleCommand, SearchCommand, StoreCommand
from pymap.parsing.primitives import List, Number
from pymap.parsing.response import CommandResponse, ResponseCode, ResponseOk, UntaggedResponse
from pymap.parsing.response.specials import FetchResponse, StatusResponse
from pymap.parsing.specials import FetchAttribute, SequenceSet, StatusAttribute
from pymap.parsing.specials.fetchattr import FetchValue

from edge.imap.backend.message import ImapMessage
from edge.imap.backend.session import ImapSession
from edge.imap.backend.view_message import ViewBatches, view_serves
from edge.imap.condstore import CONDSTORE, HIGHESTMODSEQ, FolderSnapshot
from edge.imap.condstore.commands import (
    CondstoreFetch,
    CondstoreSearch,
    CondstoreStore,
    EnableCommand,
)
from edge.imap.condstore.fetch import (
    MODSEQ_ITEM,
    CondstoreAttributes,
    ModseqAttribute,
    modseq_of,
    modseq_value,
)
from edge.imap.condstore.indexed import IndexedFetch, only_indexed
from edge.imap.condstore.listed import listed_fetches, only_listed

LISTED_ON_LOOP = 2000  # FETCH answers of the listing made on the event loop, at most


class CondstoreState(ConnectionState):
    """pymap's connection state with CONDSTORE's commands answered."""

    # RFC 7162 3.1: once a client has used CONDSTORE, every FETCH it is sent with FLAGS
    # also carries the message's MODSEQ.
    condstore = False

    @property
    def session(self) -> ImapSession:
        return cast(ImapSession, super().session)

    async def do_enable(self, cmd: EnableCommand) -> tuple[CommandResponse, None]:
        response = ResponseOk(cmd.tag, b"ENABLE completed.")
        enabled = [name for name in dict.fromkeys(cmd.capabilities) if name == CONDSTORE]
        self.condstore = self.condstore or bool(enabled)
        response.add_untagged(UntaggedResponse(b" ".join([b"ENABLED", *enabled])))
        return response, None

    async def do_select(self, cmd: SelectCommand) -> Any:
        if cmd.options.has(CONDSTORE):
            self.condstore = True
        response, selected = await super().do_select(cmd)
        if isinstance(response, ResponseOk) and selected is not None:
            response.add_untagged_ok(b"Highest", ResponseCode.of(
                b"HIGHESTMODSEQ %d" % selected.mod_sequence))
        return response, selected

    async def do_status(self, cmd: StatusCommand) -> Any:
        wanted = [item.value for item in cmd.status_list]
        if HIGHESTMODSEQ not in wanted:
            return await super().do_status(cmd)
        self.condstore = True
        snapshot, updates = await self.session.get_mailbox(cmd.mailbox, selected=self._selected)
        assert isinstance(snapshot, FolderSnapshot)
        values = {b"MESSAGES": snapshot.exists, b"RECENT": 0, b"UNSEEN": snapshot.unseen,
                  b"UIDNEXT": snapshot.next_uid, b"UIDVALIDITY": snapshot.uid_validity,
                  HIGHESTMODSEQ: snapshot.highest_modseq}
        data: dict[StatusAttribute, MaybeBytes] = {
            item: (snapshot.mailbox_id.parens if item.value == b"MAILBOXID"
                   else Number(values[item.value]))
            for item in cmd.status_list}
        response = ResponseOk(cmd.tag, b"STATUS completed.")
        response.add_untagged(StatusResponse(cmd.mailbox, data))
        return response, updates

    async def do_fetch(self, cmd: FetchCommand) -> Any:
        if not isinstance(cmd, CondstoreFetch):
            return await super().do_fetch(cmd)
        if cmd.changed_since is not None or cmd.wants_modseq:
            self.condstore = True
        if self.condstore and not cmd.wants_modseq \
                and any(attribute.value == b"FLAGS" for attribute in cmd.attributes):
            cmd.attributes = [*cmd.attributes, ModseqAttribute()]
        selected = self.selected
        if not cmd.uid:
            selected.hide_expunged = True
        if cmd.changed_since is not None:
            since = cmd.changed_since
            uids = [message.uid for _, message in selected.messages.get_all(cmd.sequence_set)
                    if modseq_of(message) > since]
            if not uids:
                updates = await self.session.check_mailbox(selected)
                return ResponseOk(cmd.tag, cmd.command + b" completed."), updates
            cmd.sequence_set = SequenceSet.build(uids, uid=True)
        set_seen = not selected.readonly and any(attr.set_seen for attr in cmd.attributes)
        messages, updates = await self.session.fetch_messages(selected, cmd.sequence_set,
                                                              set_seen)
        response = ResponseOk(cmd.tag, cmd.command + b" completed.")
        listed = list(messages)
        # What clients list a folder with, written a batch at a time from the listing
        # (listed.py) or from the stored views (indexed.py), not through pymap's objects.
        plain = not set_seen and all(isinstance(message, ImapMessage) and not message.expunged
                                     for _, message in listed)
        if plain and only_listed(cmd.attributes):
            # A large folder's lines are made on the thread pool: with INTERNALDATE 100,000
            # took 2 s, the event loop (every other session) waiting meanwhile.
            arguments = (listed, cmd.attributes, selected.session_flags)
            fetches = (listed_fetches(*arguments) if len(listed) <= LISTED_ON_LOOP else
                       await listed[0][1].storage.blocking(listed_fetches, *arguments))
            response.add_untagged(*fetches)
            return response, updates
        if plain and only_indexed(cmd.attributes):
            response.add_untagged(*IndexedFetch(listed, cmd.attributes, selected).responses())
            return response, updates
        # The items clients ask to show a folder come from the messages' views, read in
        # batches (edge/imap/backend/view_message.py); anything else from their bytes.
        views = (ViewBatches([message for _, message in listed], cmd.attributes)
                 if view_serves(cmd.attributes)
                 and all(isinstance(message, ImapMessage) for _, message in listed) else None)
        for position, (seq, message) in enumerate(listed):
            if message.expunged:
                response.code = ResponseCode.of(b"EXPUNGEISSUED")
            attributes = CondstoreAttributes(message, selected, cmd.attributes, views,
                                             position)
            response.add_untagged(FetchResponse(seq, attributes,
                                                writing_hook=attributes.load_hook()))
        return response, updates

    async def do_store(self, cmd: StoreCommand) -> Any:
        unchanged_since = cmd.unchanged_since if isinstance(cmd, CondstoreStore) else None
        if unchanged_since is None and not self.condstore:
            return await super().do_store(cmd)
        self.condstore = True
        selected = self.selected
        if not cmd.uid:
            selected.hide_expunged = True
        if cmd.silent:
            selected.silence(cmd.sequence_set, cmd.flag_set, cmd.mode)
        changed, modified, updates = await self.session.store_unless_changed(
            selected, cmd.sequence_set, cmd.flag_set, cmd.mode, unchanged_since)
        code: ResponseCode | None = None
        untagged: list[FetchResponse] = []
        for seq, message in changed:
            if message.expunged:
                code = ResponseCode.of(b"EXPUNGEISSUED")
                continue
            data = [] if cmd.silent else [FetchValue.of(
                _FLAGS_ITEM,
                List(message.get_flags(selected.session_flags), sort=True))]
            if cmd.uid:
                data.append(FetchValue.of(FetchAttribute(b"UID"), Number(message.uid)))
            # Even a .SILENT STORE tells the new MODSEQ (RFC 7162 3.1.3).
            data.append(modseq_value(message))
            untagged.append(FetchResponse(seq, data))
        text = cmd.command + b" completed."
        if modified:
            numbers = [message.uid if cmd.uid else seq for seq, message in modified]
            code = ResponseCode.of(b"MODIFIED " + bytes(SequenceSet.build(numbers,
                                                                           uid=cmd.uid)))
            text = b"Conditional STORE failed for some messages."
        response = ResponseOk(cmd.tag, text, code)
        response.add_untagged(*untagged)
        return response, updates

    async def do_search(self, cmd: SearchCommand) -> Any:
        if not isinstance(cmd, CondstoreSearch) or cmd.modseq_at_least is None:
            return await super().do_search(cmd)
        self.condstore = True
        least = cmd.modseq_at_least
        if not cmd.uid:
            self.selected.hide_expunged = True
        messages, updates = await self.session.search_mailbox(self.selected, cmd.keys)
        response = ResponseOk(cmd.tag, cmd.command + b" completed.")
        found = [(seq, message) for seq, message in messages if modseq_of(message) >= least]
        if any(message.expunged for _, message in found):
            response.code = ResponseCode.of(b"EXPUNGEISSUED")
        numbers = [message.uid if cmd.uid else seq for seq, message in found]
        text = b" ".join([b"SEARCH", *(b"%d" % number for number in numbers)])
        if found:
            # RFC 7162 3.1.5: the highest MODSEQ of the messages found.
            text += b" (MODSEQ %d)" % max(modseq_of(message) for _, message in found)
        response.add_untagged(UntaggedResponse(text))
        return response, updates

    async def do_command(self, cmd: Command) -> CommandResponse:
        response = await super().do_command(cmd)
        if self.condstore and self._selected is not None:
            # The FETCH FLAGS pymap sends for changes made elsewhere, numbered as the
            # folder now is, get their MODSEQ. pymap keeps a response's list of untagged
            # responses to itself: the list is only read here, its FETCHes extended.
            self._add_modseq(untagged for untagged in response._untagged
                             if isinstance(untagged, FetchResponse))
        return response

    async def receive_updates(self, cmd: IdleCommand, done: Event) -> Iterable[UntaggedResponse]:
        untagged = list(await super().receive_updates(cmd, done))
        if self.condstore:
            self._add_modseq(response for response in untagged
                             if isinstance(response, FetchResponse))
        return untagged

    def _add_modseq(self, fetches: Iterable[FetchResponse]) -> None:
        messages = self.selected.messages
        for fetch in fetches:
            if MODSEQ_ITEM in fetch.data or _FLAGS_ITEM not in fetch.data:
                continue
            found = messages.get_all(SequenceSet.build([fetch.seq]))
            if found:
                fetch.data[MODSEQ_ITEM] = modseq_value(found[0][1])


_FLAGS_ITEM = FetchAttribute(b"FLAGS")
