"""Filing with the junk filter (issue 29): each hosted recipient's copy goes where that
account's filter says, over the memory adapters, with filters trained as the learner
commits them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailcore.adapters.memory.junk import InMemoryJunkFilters
from mailcore.adapters.memory.ledger import InMemoryDeliveryLedger
from mailcore.adapters.memory.mailbox import InMemoryMailboxRepository
from mailcore.adapters.memory.outgoing import InMemoryDeliveryQueue
from mailcore.adapters.memory.raw_references import InMemoryRawReferences
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.adapters.memory.views import InMemoryImapViews
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.junk import GTUBE, JUNK_KEYWORD, DecidedBy, JunkSignals
from mailcore.domain.mailbox import INBOX, JUNK, SENT
from mailcore.domain.verdict import (
    Disposition,
    DkimVerdict,
    DmarcVerdict,
    Result,
    SpfVerdict,
    Verdict,
)
from mailcore.errors import StorageUnavailable
from mailcore.junk.model import JunkModel
from mailcore.services.filing import Outgoing, file_inbound, file_inbound_together
from mailcore.services.junk_filing import UNREADABLE, JunkFiling
from mailcore.services.recipients import HostedDomains
from tests.junk_support import message, train

DOMAINS = HostedDomains.of(["hamburger.edu"])
TRAINED, UNTRAINED = "bob@hamburger.edu", "carol@hamburger.edu"
FRIEND = "alice@crepes.fr"
DMARC_PASS = Verdict(spf=SpfVerdict(Result.PASS, "crepes.fr"),
                     dkim=(DkimVerdict(Result.PASS, "crepes.fr"),),
                     dmarc=DmarcVerdict(Result.PASS, "crepes.fr"))
DMARC_FAIL = Verdict(spf=SpfVerdict(Result.FAIL, "elsewhere.example"),
                     dmarc=DmarcVerdict(Result.FAIL, "crepes.fr", "none"))
QUARANTINE = Verdict(spf=SpfVerdict(Result.FAIL, "elsewhere.example"),
                     dmarc=DmarcVerdict(Result.FAIL, "crepes.fr", "quarantine",
                                        Disposition.QUARANTINE))


class Side:
    """One filing process: its stores, and one JunkFiling kept as a warm function keeps it."""

    def __init__(self) -> None:
        self.store = InMemoryMessageStore()
        self.mailboxes = InMemoryMailboxRepository()
        self.filters = InMemoryJunkFilters()
        self.junk = JunkFiling(self.filters)
        self.references = InMemoryRawReferences()
        self.outgoing = Outgoing(InMemoryDeliveryQueue(), InMemoryDeliveryLedger())

    def put(self, raw: bytes, *rcpts: str, sender: str = FRIEND, verdict: Verdict | None = None,
            signals: JunkSignals | None = None, submitted_by: str | None = None) -> str:
        envelope = Envelope(mail_from=sender, rcpt_tos=rcpts, peer="192.0.2.1",
                            helo="crepes.fr", tls=True, received_at=datetime.now(UTC),
                            submitted_by=submitted_by, verdict=verdict,
                            signals=signals or JunkSignals())
        return self.store.put(new_message_id(), raw, envelope)

    def file(self, key: str):
        return file_inbound(key, self.store, self.mailboxes, DOMAINS, self.outgoing,
                            references=self.references,
                            views=InMemoryImapViews(self.mailboxes), junk=self.junk)

    def copy(self, account: str, key: str):
        [stored] = [m for (owner, _), m in self.mailboxes.messages.items()
                    if owner == account and m.raw_key == key]
        return stored


@pytest.fixture
def side() -> Side:
    side = Side()
    train(side.filters, TRAINED)
    return side


def test_trained_account_files_junk_like_in_junk_and_ham_like_in_inbox_untrained_never(side):
    junk_key = side.put(message(1, True, FRIEND), TRAINED, UNTRAINED, verdict=DMARC_PASS)
    ham_key = side.put(message(2, False, FRIEND), TRAINED, UNTRAINED, verdict=DMARC_PASS)

    side.file(junk_key)
    side.file(ham_key)

    junked = side.copy(TRAINED, junk_key)
    assert junked.folder == JUNK
    assert junked.junk_verdict.junk and junked.junk_verdict.decided_by is DecidedBy.CONTENT
    assert junked.junk_verdict.reasons == ("content",)
    assert junked.junk_verdict.score >= 0.95
    assert JUNK_KEYWORD not in junked.flags  # the filter's guess is no lesson
    kept = side.copy(TRAINED, ham_key)
    assert kept.folder == INBOX and not kept.junk_verdict.junk
    assert kept.junk_verdict.score < 0.5
    for key in (junk_key, ham_key):
        untrained = side.copy(UNTRAINED, key)
        assert untrained.folder == INBOX
        assert untrained.junk_verdict.reasons == ("untrained",)


def test_a_correspondent_the_account_wrote_to_is_never_junked_for_its_words(side):
    # Bob writes to Alice (submitted mail: its Sent copy records whom he wrote to).
    sent = side.put(message(3, False, TRAINED, to=FRIEND), FRIEND, sender=TRAINED,
                    submitted_by=TRAINED)
    side.file(sent)
    assert side.copy(TRAINED, sent).folder == SENT
    assert side.filters.history[TRAINED]["alice@crepes.fr"].wrote_to
    assert side.filters.history[TRAINED]["crepes.fr"].wrote_to

    key = side.put(message(4, True, FRIEND), TRAINED, verdict=DMARC_PASS)
    side.file(key)

    copy = side.copy(TRAINED, key)
    assert copy.folder == INBOX
    assert copy.junk_verdict.decided_by is DecidedBy.HISTORY
    assert copy.junk_verdict.reasons == ("wrote-to:alice@crepes.fr",)


@pytest.mark.parametrize(("raw_extra", "verdict", "signals", "reason"), [
    (b"\r\n" + GTUBE + b"\r\n", DMARC_PASS, None, "gtube"),  # found in the bytes
    (b"", DMARC_PASS, JunkSignals(gtube=True), "gtube"),  # found by the edge
    (b"", DMARC_PASS, JunkSignals(dnsbl=("dnsbl.test",)), "dnsbl:dnsbl.test"),
    (b"", QUARANTINE, None, "dmarc-quarantine"),
])
def test_signals_junk_a_message_even_from_a_correspondent(side, raw_extra, verdict, signals,
                                                          reason):
    side.junk.record_sent(TRAINED, [FRIEND])
    side.junk.record_sent(UNTRAINED, [FRIEND])
    key = side.put(message(5, False, FRIEND, extra=raw_extra), TRAINED, UNTRAINED,
                   verdict=verdict, signals=signals)

    side.file(key)

    for account in (TRAINED, UNTRAINED):
        copy = side.copy(account, key)
        assert copy.folder == JUNK
        assert copy.junk_verdict.decided_by is DecidedBy.SIGNAL
        assert reason in copy.junk_verdict.reasons


@pytest.mark.parametrize("verdict", [None, DMARC_FAIL])
def test_a_forged_from_of_a_correspondent_gets_no_trust(side, verdict):
    side.junk.record_sent(TRAINED, [FRIEND])
    key = side.put(message(6, True, FRIEND), TRAINED, verdict=verdict)

    side.file(key)

    copy = side.copy(TRAINED, key)
    assert copy.folder == JUNK
    assert copy.junk_verdict.decided_by is DecidedBy.CONTENT


def test_one_state_read_per_message_and_the_model_read_once_per_version(side):
    keys = [side.put(message(seed, seed % 2 == 0), TRAINED, UNTRAINED, verdict=DMARC_PASS)
            for seed in range(10, 16)]
    side.filters.state_reads = 0

    for key in keys:
        side.file(key)

    assert side.filters.state_reads == len(keys)  # per message, one for both recipients
    assert side.filters.model_reads == 1
    assert [side.copy(TRAINED, key).folder for key in keys] == [JUNK, INBOX] * 3

    train(side.filters, TRAINED, each=30)  # the learner commits a new version
    side.file(side.put(message(20, True), TRAINED))
    side.file(side.put(message(21, True), TRAINED))
    assert side.filters.model_reads == 2


def test_a_batch_reads_every_recipient_s_state_in_one_request_and_decides_each(side):
    dave = "dave@hamburger.edu"
    train(side.filters, dave)
    side.filters.record_written_to(dave, [FRIEND])  # Dave trusts Alice: never junked
    keys = [side.put(message(seed, seed % 2 == 0, FRIEND), TRAINED, dave, UNTRAINED,
                     verdict=DMARC_PASS) for seed in range(30, 40)]
    side.filters.state_reads = 0

    outcomes = file_inbound_together(keys, side.store, side.mailboxes, DOMAINS,
                                     references=side.references,
                                     views=InMemoryImapViews(side.mailboxes), junk=side.junk)

    assert side.filters.state_reads == 1
    assert all(set(outcome.filed_for) == {TRAINED, dave, UNTRAINED} for outcome in outcomes)
    assert [side.copy(TRAINED, key).folder for key in keys] == [JUNK, INBOX] * 5
    assert {side.copy(dave, key).folder for key in keys} == {INBOX}
    assert {side.copy(UNTRAINED, key).folder for key in keys} == {INBOX}
    assert side.copy(dave, keys[0]).junk_verdict.decided_by is DecidedBy.HISTORY
    again = file_inbound_together(keys, side.store, side.mailboxes, DOMAINS,
                                  references=side.references,
                                  views=InMemoryImapViews(side.mailboxes), junk=side.junk)
    assert all(outcome.filed_for == () for outcome in again)
    assert len(side.mailboxes.messages) == 3 * len(keys)
    assert [side.copy(TRAINED, key).folder for key in keys] == [JUNK, INBOX] * 5


class _OneAccountDamaged(InMemoryJunkFilters):
    """Carol's state item cannot be decoded (what the adapter raises is a ValueError)."""

    def _state(self, account, identities):
        if account == UNTRAINED:
            raise ValueError("a damaged state")
        return super()._state(account, identities)


def test_an_unreadable_state_files_only_that_account_s_copies_as_unjudged(caplog):
    side = Side()
    side.filters = _OneAccountDamaged()
    side.junk = JunkFiling(side.filters)
    train(side.filters, TRAINED)
    keys = [side.put(message(seed, True), TRAINED, UNTRAINED) for seed in (41, 42)]

    outcomes = file_inbound_together(keys, side.store, side.mailboxes, DOMAINS,
                                     references=side.references,
                                     views=InMemoryImapViews(side.mailboxes), junk=side.junk)

    assert all(set(outcome.filed_for) == {TRAINED, UNTRAINED} for outcome in outcomes)
    assert {side.copy(TRAINED, key).folder for key in keys} == {JUNK}
    for key in keys:
        assert UNREADABLE not in side.copy(TRAINED, key).junk_verdict.reasons
        assert side.copy(UNTRAINED, key).folder == INBOX
        assert UNREADABLE in side.copy(UNTRAINED, key).junk_verdict.reasons
    assert "junk filter state unreadable" in caplog.text


def test_tokens_are_made_once_per_message_for_all_recipients(side, monkeypatch):
    from mailcore.services import junk_filing
    made: list[bytes] = []
    real = junk_filing.message_tokens

    def counting(raw: bytes) -> frozenset[str]:
        made.append(raw)
        return real(raw)

    monkeypatch.setattr(junk_filing, "message_tokens", counting)
    train(side.filters, "dave@hamburger.edu")
    key = side.put(message(7, True), TRAINED, "dave@hamburger.edu", UNTRAINED)

    side.file(key)

    assert len(made) == 1
    assert side.copy("dave@hamburger.edu", key).folder == JUNK
    side.file(side.put(message(8, True), UNTRAINED))  # nobody needs its content
    assert len(made) == 1


def test_filing_twice_gives_one_copy_each_in_the_same_folder(side):
    key = side.put(message(9, True), TRAINED, UNTRAINED)

    first = side.file(key)
    second = side.file(key)

    assert set(first.filed_for) == {TRAINED, UNTRAINED}
    assert second.filed_for == () and set(second.already_filed_for) == {TRAINED, UNTRAINED}
    assert len(side.mailboxes.messages) == 2
    assert side.copy(TRAINED, key).folder == JUNK
    assert side.copy(UNTRAINED, key).folder == INBOX
    folders = {f.name: f.total for f in side.mailboxes.folders(TRAINED)}
    assert (folders.get(JUNK), folders.get(INBOX, 0)) == (1, 0)


def test_a_storage_failure_of_the_filter_is_retried_and_loses_nothing(side):
    class Failing:
        failures = 1

        def recipient_states(self, wanted):
            if self.failures:
                self.failures -= 1
                raise StorageUnavailable("throttled")
            return side.filters.recipient_states(wanted)

        def __getattr__(self, name):
            return getattr(side.filters, name)

    side.junk = JunkFiling(Failing())
    key, other = side.put(message(11, True), TRAINED), side.put(message(10, False), UNTRAINED)
    outcomes = file_inbound_together([key, other], side.store, side.mailboxes, DOMAINS,
                                     references=side.references,
                                     views=InMemoryImapViews(side.mailboxes), junk=side.junk)
    assert all(isinstance(outcome, StorageUnavailable) for outcome in outcomes)
    assert not side.mailboxes.messages

    side.file(key)  # the queue delivers them again
    side.file(other)

    assert side.copy(TRAINED, key).folder == JUNK
    assert side.copy(UNTRAINED, other).folder == INBOX


class _DamagedModels(InMemoryJunkFilters):
    """Models whose bytes come back cut short (the state item, with the trained counts,
    reads fine)."""

    def model(self, account: str, version: int) -> JunkModel:
        self.model_reads += 1
        return JunkModel.from_bytes(self.models[account][:40])


def test_a_damaged_model_files_in_the_inbox_with_the_reason_and_an_error_logged(caplog):
    side = Side()
    side.filters = _DamagedModels()
    side.junk = JunkFiling(side.filters)
    train(side.filters, TRAINED)
    key = side.put(message(12, True), TRAINED)

    side.file(key)

    copy = side.copy(TRAINED, key)
    assert copy.folder == INBOX
    assert copy.junk_verdict.reasons == ("untrained", UNREADABLE)
    assert "junk model unreadable" in caplog.text
    gtube = side.put(message(13, False, extra=GTUBE), TRAINED)
    side.file(gtube)
    assert side.copy(TRAINED, gtube).folder == JUNK  # the signals need no model


class _LearnerComesBetween(InMemoryJunkFilters):
    """A learner that commits a new model right after filing read the account's state."""

    def recipient_states(self, wanted):
        states = super().recipient_states(wanted)
        if any(identities and account == TRAINED for account, identities in wanted) and (
                self.versions[TRAINED] == 1):
            train(self, TRAINED, each=30)
        return states


def test_a_model_committed_between_the_state_and_the_model_read_is_the_one_used():
    side = Side()
    side.filters = _LearnerComesBetween()
    side.junk = JunkFiling(side.filters)
    train(side.filters, TRAINED)
    key = side.put(message(14, True), TRAINED)

    side.file(key)

    assert side.copy(TRAINED, key).folder == JUNK
    assert side.filters.versions[TRAINED] == 2 and side.filters.model_reads == 1


def test_a_fault_reading_the_words_files_the_message_as_unjudged(monkeypatch) -> None:
    # Whatever a stranger's bytes make the tokenizer raise, filing goes on: else every
    # try of the filing fails, and the message never arrives.
    import mailcore.services.junk_filing as junk_filing
    from mailcore.adapters.memory.junk import InMemoryJunkFilters as Filters
    from mailcore.domain.envelope import Envelope as Env
    from tests.junk_support import message as junk_message
    from tests.junk_support import train as train_filter

    def broken(raw: bytes) -> frozenset[str]:
        raise TypeError("a parser's fault")

    monkeypatch.setattr(junk_filing, "message_tokens", broken)
    filters = Filters()
    train_filter(filters, "bob@hamburger.edu")
    filed = junk_filing.JunkFiling(filters).file_for(
        Env("x@crepes.fr", ("bob@hamburger.edu",), "192.0.2.1", "crepes.fr", True),
        junk_message(3, True), ["bob@hamburger.edu"])
    verdict = filed["bob@hamburger.edu"].verdict
    assert filed["bob@hamburger.edu"].folder == "Inbox" and not verdict.junk
    assert junk_filing.UNREADABLE in verdict.reasons


def test_a_batch_waiting_for_its_decisions_holds_what_the_tokens_read_not_whole_messages(
        ) -> None:
    # A 3 MiB message with GTUBE at its very end: the arrival keeps the first 2 MiB (all the
    # tokens are made of) and has found GTUBE in the whole.
    from mailcore.junk.tokens import MAX_SCANNED_BYTES, message_tokens

    raw = (b"From: <someone@example.net>\r\nSubject: big\r\n\r\n"
           + b"lorem ipsum dolor\r\n" * (3 * 1024 * 1024 // 19) + GTUBE + b"\r\n")
    envelope = Envelope(mail_from="someone@example.net", rcpt_tos=("bob@hamburger.edu",),
                        peer="192.0.2.1", helo="mail.example.net", tls=True)
    arrival = JunkFiling.arrival(envelope, raw, ["bob@hamburger.edu"])
    assert len(arrival.head) == MAX_SCANNED_BYTES < len(raw)
    assert arrival.envelope.signals.gtube and arrival.address == "someone@example.net"
    assert message_tokens(arrival.head) == message_tokens(raw)
    small = raw[:1000]
    assert JunkFiling.arrival(envelope, small, ["bob@hamburger.edu"]).head is small
