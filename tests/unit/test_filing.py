"""Filing routes by the envelope, once per recipient, whatever the headers say."""

from datetime import UTC, datetime

import pytest

from mailcore.adapters.memory.ledger import InMemoryDeliveryLedger
from mailcore.adapters.memory.mailbox import InMemoryMailboxRepository
from mailcore.adapters.memory.outgoing import InMemoryDeliveryQueue
from mailcore.adapters.memory.raw_references import InMemoryRawReferences
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.adapters.memory.views import InMemoryImapViews
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import INBOX
from mailcore.errors import MessageNotFound, StorageUnavailable, TransientFailure
from mailcore.s3_keys import message_key
from mailcore.services.filing import Outgoing, file_inbound, file_inbound_together
from mailcore.services.recipients import HostedDomains

DOMAINS = HostedDomains.of(["hamburger.edu"])
# Filing holds the raw bytes' references; their accounting is tested on its own.
REFERENCES = InMemoryRawReferences()
HEADERS_NAME_DAVE = (
    b"From: alice@crepes.fr\r\nTo: dave@hamburger.edu\r\nSubject: Hi\r\n\r\nHello\r\n"
)


def _stored(store, raw, *rcpts):
    envelope = Envelope(mail_from="alice@crepes.fr", rcpt_tos=rcpts, peer="192.0.2.1",
                        helo="crepes.fr", tls=False, received_at=datetime.now(UTC))
    return store.put(new_message_id(), raw, envelope)


def test_bcc_recipient_in_envelope_receives_and_header_only_recipient_does_not():
    store, mailboxes = InMemoryMessageStore(), InMemoryMailboxRepository()
    key = _stored(store, HEADERS_NAME_DAVE, "bob@hamburger.edu")

    result = file_inbound(key, store, mailboxes, DOMAINS, references=REFERENCES,
                          views=InMemoryImapViews(mailboxes))

    assert result.filed_for == ("bob@hamburger.edu",)
    assert mailboxes.list_folder("bob@hamburger.edu", INBOX, 10, None).messages
    assert not mailboxes.list_folder("dave@hamburger.edu", INBOX, 10, None).messages


def test_same_object_filed_twice_yields_one_stored_message_per_recipient():
    store, mailboxes = InMemoryMessageStore(), InMemoryMailboxRepository()
    key = _stored(store, HEADERS_NAME_DAVE, "bob@hamburger.edu", "carol@hamburger.edu")

    first = file_inbound(key, store, mailboxes, DOMAINS, references=REFERENCES,
                         views=InMemoryImapViews(mailboxes))
    second = file_inbound(key, store, mailboxes, DOMAINS, references=REFERENCES,
                          views=InMemoryImapViews(mailboxes))

    assert set(first.filed_for) == {"bob@hamburger.edu", "carol@hamburger.edu"}
    assert second.filed_for == ()
    assert set(second.already_filed_for) == set(first.filed_for)
    assert len(mailboxes.messages) == 2


def test_remote_recipients_of_unauthenticated_mail_are_neither_filed_nor_queued():
    store, mailboxes = InMemoryMessageStore(), InMemoryMailboxRepository()
    outgoing = Outgoing(InMemoryDeliveryQueue(), InMemoryDeliveryLedger())
    key = _stored(store, HEADERS_NAME_DAVE, "bob@hamburger.edu", "zoe@crepes.fr")

    result = file_inbound(key, store, mailboxes, DOMAINS, outgoing, references=REFERENCES,
                          views=InMemoryImapViews(mailboxes))

    assert result.queued_for == ()
    assert outgoing.queue.jobs == []
    assert [account for account, _ in mailboxes.messages] == ["bob@hamburger.edu"]


def test_submitted_mail_is_filed_for_hosted_recipients_sent_copy_and_queued_per_domain():
    store, mailboxes = InMemoryMessageStore(), InMemoryMailboxRepository()
    outgoing = Outgoing(InMemoryDeliveryQueue(), InMemoryDeliveryLedger())
    envelope = Envelope(mail_from="bob@hamburger.edu",
                        rcpt_tos=("carol@hamburger.edu", "zoe@crepes.fr", "yan@crepes.fr",
                                  "x@other.test", "bob@hamburger.edu"),
                        peer="192.0.2.1", helo="laptop", tls=True,
                        submitted_by="bob@hamburger.edu")
    key = store.put(new_message_id(), b"From: bob@hamburger.edu\r\n\r\nhi\r\n", envelope)

    for _ in range(2):  # at-least-once events
        result = file_inbound(key, store, mailboxes, DOMAINS, outgoing, references=REFERENCES,
                              views=InMemoryImapViews(mailboxes))

    assert [(job.domain, job.recipients) for job in outgoing.queue.jobs] == [
        ("crepes.fr", ("zoe@crepes.fr", "yan@crepes.fr")), ("other.test", ("x@other.test",))]
    assert mailboxes.list_folder("carol@hamburger.edu", INBOX, 10, None).messages
    [inbox_copy] = mailboxes.list_folder("bob@hamburger.edu", INBOX, 10, None).messages
    [sent_copy] = mailboxes.list_folder("bob@hamburger.edu", "Sent", 10, None).messages
    assert sent_copy.seen and inbox_copy.message_id != sent_copy.message_id
    assert set(result.queued_for) == {"zoe@crepes.fr", "yan@crepes.fr", "x@other.test"}


def test_unparseable_message_is_filed_with_raw_kept_and_flagged():
    store, mailboxes = InMemoryMessageStore(), InMemoryMailboxRepository()
    garbage = b"\x00\xff no headers at all \r\n\x00"
    key = _stored(store, garbage, "bob@hamburger.edu")

    file_inbound(key, store, mailboxes, DOMAINS, references=REFERENCES,
                 views=InMemoryImapViews(mailboxes))

    [stored] = mailboxes.list_folder("bob@hamburger.edu", INBOX, 10, None).messages
    assert stored.summary.parse_problem
    assert store.get_raw(stored.raw_key) == garbage


def test_missing_message_object_is_an_error_not_a_silent_skip():
    store, mailboxes = InMemoryMessageStore(), InMemoryMailboxRepository()
    with pytest.raises(MessageNotFound):
        file_inbound(message_key(new_message_id()), store, mailboxes, DOMAINS,
                     references=REFERENCES, views=InMemoryImapViews(mailboxes))


class _RefusingTogether(InMemoryMailboxRepository):
    """Mailboxes where one message cannot be written, alone or with others (as an item
    DynamoDB refuses would fail the whole transaction it is in)."""

    def __init__(self, refused_key: str) -> None:
        super().__init__()
        self.refused_key = refused_key
        self.together: list[int] = []

    def file(self, message, *, holding=0):
        if message.raw_key == self.refused_key:
            raise StorageUnavailable("item refused")
        return super().file(message, holding=holding)

    def file_together(self, arrivals):
        self.together.append(len(arrivals))
        if any(message.raw_key == self.refused_key for message, _ in arrivals):
            raise StorageUnavailable("item refused")
        return super().file_together(arrivals)


def test_a_message_that_fails_the_shared_write_fails_alone():
    store = InMemoryMessageStore()
    keys = [_stored(store, HEADERS_NAME_DAVE, "bob@hamburger.edu") for _ in range(3)]
    missing = message_key(new_message_id())
    mailboxes = _RefusingTogether(refused_key=keys[1])

    outcomes = file_inbound_together([keys[0], missing, *keys[1:]], store, mailboxes,
                                     DOMAINS, references=REFERENCES,
                                     views=InMemoryImapViews(mailboxes))

    assert mailboxes.together == [3]  # the missing one never got that far
    assert isinstance(outcomes[1], MessageNotFound)
    assert isinstance(outcomes[2], StorageUnavailable)
    assert [outcome.filed_for for outcome in (outcomes[0], outcomes[3])] == [
        ("bob@hamburger.edu",), ("bob@hamburger.edu",)]
    inbox = mailboxes.list_folder("bob@hamburger.edu", INBOX, 10, None).messages
    assert {message.raw_key for message in inbox} == {keys[0], keys[2]}


def test_what_stops_one_message_before_it_is_fetched_stops_that_one_alone():
    store, mailboxes = InMemoryMessageStore(), InMemoryMailboxRepository()
    keys = [_stored(store, HEADERS_NAME_DAVE, "bob@hamburger.edu") for _ in range(3)]

    def before_each(key):
        if key == keys[1]:
            raise TransientFailure("no time left")

    outcomes = file_inbound_together(keys, store, mailboxes, DOMAINS, references=REFERENCES,
                                     views=InMemoryImapViews(mailboxes),
                                     before_each=before_each)

    assert isinstance(outcomes[1], TransientFailure)
    assert [outcomes[0].filed_for, outcomes[2].filed_for] == [("bob@hamburger.edu",)] * 2
    assert len(mailboxes.messages) == 2


def test_a_view_that_cannot_be_made_never_stops_filing(monkeypatch):
    """Made once per message, not per recipient; should making it fail (a bug: it is
    bounded and linear), the message is filed without one and IMAP makes it later."""
    from mailcore.imap_view.view import make_view
    from mailcore.services import imap_views

    store, mailboxes = InMemoryMessageStore(), InMemoryMailboxRepository()
    views = InMemoryImapViews(mailboxes)
    made: list[int] = []
    monkeypatch.setattr(imap_views, "make_view",
                        lambda raw: made.append(len(raw)) or make_view(raw))
    key = _stored(store, HEADERS_NAME_DAVE, "bob@hamburger.edu", "carol@hamburger.edu")
    assert file_inbound(key, store, mailboxes, DOMAINS, references=REFERENCES,
                        views=views).filed_for == ("bob@hamburger.edu", "carol@hamburger.edu")
    assert made == [len(HEADERS_NAME_DAVE)]  # one view for both copies
    assert set(mailboxes.views) == {(copy.account, copy.message_id)
                                    for copy in mailboxes.messages.values()}

    def broken(raw: bytes) -> None:
        raise RecursionError("a bug in the view")

    monkeypatch.setattr(imap_views, "make_view", broken)
    other = _stored(store, HEADERS_NAME_DAVE, "bob@hamburger.edu")
    result = file_inbound(other, store, mailboxes, DOMAINS, references=REFERENCES, views=views)
    assert result.filed_for == ("bob@hamburger.edu",)
    assert len(mailboxes.messages) == 3 and len(mailboxes.views) == 2
