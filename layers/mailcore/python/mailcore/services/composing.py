"""Writing mail through the API: send, reply, forward, drafts and uploads.

Sent mail takes the same path as mail submitted on the SMTP submission port: the
message and its envelope go to the raw store, and filing (Sent copy, hosted
recipients' Inboxes, delivery jobs for the others) follows from there.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import cast

from mailcore.domain.compose import (
    MAX_MESSAGE_BYTES,
    AttachmentData,
    Composition,
    Original,
    compose,
    message_id_header,
    sendable_draft,
)
from mailcore.domain.envelope import Envelope
from mailcore.domain.identity import MAX_HEADER_SECTION, check_identity
from mailcore.domain.ids import is_message_id, new_message_id
from mailcore.domain.mailbox import DRAFTS, StoredMessage
from mailcore.errors import InvalidRequest, MessageNotFound
from mailcore.parsing.bounded import read_content, summarise
from mailcore.ports import (
    AccountDirectory,
    ImapViews,
    Mailboxes,
    MessageStore,
    RawReferences,
    SendingLimit,
    SigningKeys,
    Suppressions,
    UploadForm,
)
from mailcore.services.accept import accept_message
from mailcore.services.changes import remove_for_good
from mailcore.services.imap_views import forget_view, keep_view_of
from mailcore.services.recipients import HostedDomains, hosted_candidate
from mailcore.services.signing import sender_fields
from mailcore.services.suppression import check_not_suppressed

DRAFT_FLAGS = frozenset({"seen", "draft"})
UPLOAD_LINK_SECONDS = 300
_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class UploadRef:
    upload_id: str
    filename: str
    content_type: str


@dataclass(frozen=True)
class ComposeRequest:
    message: Composition[AttachmentData | UploadRef]
    in_reply_to: str | None = None  # our id of a message in the author's mailbox
    forward_of: str | None = None


@dataclass(frozen=True)
class Submitted:
    message_id: str
    message_id_header: str


@dataclass(frozen=True)
class Upload:
    upload_id: str
    form: UploadForm
    max_size: int
    expires_in: int


@dataclass(frozen=True)
class Composer:
    """What writing mail needs, and who is writing from where."""

    mailboxes: Mailboxes
    store: MessageStore
    directory: AccountDirectory
    domains: HostedDomains
    sending_limit: SendingLimit
    references: RawReferences
    hostname: str
    views: ImapViews  # a draft's IMAP view, written again with its bytes
    signing_keys: SigningKeys  # DKIM: what is sent is signed once, before it is stored
    suppressions: Suppressions | None = None  # the sending domain's list refuses recipients

    def send(self, account: str, request: ComposeRequest, client_ip: str) -> Submitted:
        message_id, now = new_message_id(), datetime.now(UTC)
        raw = compose(account, message_id, self._composition(account, request), now,
                      in_reply_to=self._original(account, request.in_reply_to),
                      forward_of=self._original(account, request.forward_of))
        recipients = request.message.recipients()
        submitted = self._submit(account, message_id, raw, recipients, client_ip, now)
        if request.in_reply_to:
            self._mark_answered(account, request.in_reply_to)
        return submitted

    def save_draft(self, account: str, request: ComposeRequest,
                   draft_id: str | None = None) -> StoredMessage:
        """A new draft, or (with draft_id) a new text for an existing one; with the IMAP
        view of its new bytes (sent mail gets its view when filed, as received mail)."""
        now = datetime.now(UTC)
        current = self._draft(account, draft_id) if draft_id else None
        message_id = draft_id or new_message_id()
        in_reply_to = self._original(account, request.in_reply_to)
        if in_reply_to is None and current is not None:
            # A draft opened again is rewritten without our id of what it answers (the
            # user agent knows only its headers): it stays in its conversation.
            in_reply_to = self._thread_of(current)
        raw = compose(account, message_id, self._composition(account, request), now,
                      in_reply_to=in_reply_to,
                      forward_of=self._original(account, request.forward_of),
                      keep_bcc=True)
        key = self.store.draft_key(message_id)
        if current is not None and current.raw_key != key:
            # The copies of one received message share its id in every account: a draft
            # made of one gets a key no other account's draft can have.
            key = self.store.draft_key(new_message_id())
        if current is not None:
            # The view of the old bytes goes first: should the new one not be kept, IMAP
            # makes it from the new bytes, never shows the old one for them.
            forget_view(self.views, account, message_id)
        self.store.put_object(key, raw, "message/rfc822")
        summary = summarise(raw)
        if current is None or current.raw_key != self.store.draft_key(message_id):
            self.references.hold(key, 1)  # one copy, in Drafts
            if current is not None:
                # A draft an IMAP client made (APPEND, STORE \Draft) has bytes elsewhere,
                # perhaps shared with other copies: rewriting them in place is not ours to
                # do, and writing here alone left it showing and sending its old text. Its
                # new text is a new message in Drafts under the same id; the old copy goes
                # through the one reference check.
                remove_for_good(account, message_id, self.mailboxes, self.store)
            draft = StoredMessage(account=account, message_id=message_id, folder=DRAFTS,
                                  received_at=now, raw_key=key, size=len(raw),
                                  summary=summary,
                                  flags=DRAFT_FLAGS if current is None else current.flags)
            self.mailboxes.file(draft)
            keep_view_of(self.views, account, message_id, key, raw)
            return draft
        updated = self.mailboxes.update(account, message_id, lambda stored: replace(
            stored, received_at=now, size=len(raw), summary=summary))
        keep_view_of(self.views, account, message_id, key, raw)
        return updated

    def send_draft(self, account: str, draft_id: str, client_ip: str) -> Submitted:
        draft = self._draft(account, draft_id)
        message_id, now = new_message_id(), datetime.now(UTC)
        written = self.store.get_raw(draft.raw_key)
        # Whatever made it a draft (our composer, an IMAP APPEND or STORE \Draft), it is
        # sent only under the submission port's identity rules. Its lines are judged as the
        # parser below reads them (CR, LF and CRLF all end a line there).
        # (Only the first lines are judged: a longer header section is refused anyway.)
        check_identity(_LINE_END.sub(b"\r\n", written[:2 * MAX_HEADER_SECTION]), account)
        raw, recipients = sendable_draft(written, message_id, account, now)
        submitted = self._submit(account, message_id, raw, recipients, client_ip, now)
        # Sent: the draft goes. Should this fail, the draft stays and the mail is sent.
        # Its bytes may be shared (a received message made a draft over IMAP).
        remove_for_good(account, draft_id, self.mailboxes, self.store)
        return submitted

    def create_upload(self, account: str, content_type: str) -> Upload:
        upload_id = new_message_id()
        form = self.store.upload_form(self.store.upload_key(account, upload_id), content_type,
                                      MAX_MESSAGE_BYTES)
        return Upload(upload_id, form, MAX_MESSAGE_BYTES, UPLOAD_LINK_SECONDS)

    # ---- helpers -----------------------------------------------------------------------
    def _submit(self, account: str, message_id: str, raw: bytes, recipients: tuple[str, ...],
                client_ip: str, now: datetime) -> Submitted:
        if not recipients:
            raise InvalidRequest("at least one recipient in to, cc or bcc", "to")
        for recipient in recipients:
            hosted = hosted_candidate(recipient, self.domains)
            if hosted is not None and not self.directory.is_account(hosted):
                raise InvalidRequest(f"no mailbox {recipient} here", "to")
        if self.suppressions is not None:
            check_not_suppressed(account, recipients, self.domains, self.suppressions)
        self.sending_limit.charge(account, len(recipients))
        above, raw = sender_fields(raw, account, self.signing_keys, self.hostname)
        trace = (f"Received: from [{client_ip}]\r\n\tby {self.hostname} (mailpipe) with HTTPS"
                 f" id {message_id};\r\n\t{email.utils.format_datetime(now)}\r\n").encode()
        envelope = Envelope(mail_from=account, rcpt_tos=recipients, peer=client_ip,
                            helo="mailbox-api", tls=True, received_at=now,
                            submitted_by=account)
        accept_message(self.store, message_id, above + trace + raw, envelope)
        return Submitted(message_id, message_id_header(message_id, account))

    def _composition(self, account: str,
                     request: ComposeRequest) -> Composition[AttachmentData]:
        attachments: list[AttachmentData] = []
        total = 0
        for index, attachment in enumerate(request.message.attachments):
            if isinstance(attachment, UploadRef):
                if not is_message_id(attachment.upload_id):
                    raise InvalidRequest("no such upload", f"attachments[{index}].upload_id")
                try:
                    data = self.store.get_object(
                        self.store.upload_key(account, attachment.upload_id),
                                                   MAX_MESSAGE_BYTES - total)
                except MessageNotFound as exc:
                    raise InvalidRequest("no such upload",
                                         f"attachments[{index}].upload_id") from exc
                attachment = AttachmentData(attachment.filename, attachment.content_type, data)
            total += len(attachment.data)
            attachments.append(attachment)
        # Uploads are now data: the same composition, with nothing left to fetch.
        return cast("Composition[AttachmentData]",
                    replace(request.message, attachments=tuple(attachments)))

    def _original(self, account: str, message_id: str | None) -> Original | None:
        if message_id is None:
            return None
        stored = self.mailboxes.get(account, message_id)  # another's id: MessageNotFound
        raw = self.store.get_raw(stored.raw_key)
        content = read_content(raw)
        return Original(message_id_header=stored.summary.message_id_header,
                        references=content.references, subject=stored.summary.subject,
                        raw=raw)

    def _thread_of(self, draft: StoredMessage) -> Original | None:
        content = read_content(self.store.get_raw(draft.raw_key))
        if not content.in_reply_to:
            return None
        references = (content.references or "").split()
        if references and references[-1] == content.in_reply_to:
            references.pop()  # compose puts it back at the end
        return Original(message_id_header=content.in_reply_to,
                        references=" ".join(references) or None,
                        subject=draft.summary.subject, raw=b"")

    def _draft(self, account: str, draft_id: str) -> StoredMessage:
        stored = self.mailboxes.get(account, draft_id)
        if "draft" not in stored.flags:
            raise MessageNotFound(f"{draft_id} is not a draft")
        return stored

    def _mark_answered(self, account: str, message_id: str) -> None:
        # Deleted meanwhile: the reply is sent all the same.
        with contextlib.suppress(MessageNotFound):
            self.mailboxes.update(account, message_id, lambda stored: replace(
                stored, flags=stored.flags | {"answered"}))
