"""The junk filter at filing time (issue 29): where each hosted recipient's copy of an
inbound message goes, Inbox or Junk, and why; and the trust a sent message teaches.

Costs: the From identities once per message; the filter states of every recipient of a
filing batch in one read (`JunkFilterStore.recipient_states`, one request for up to 100
items: measured, boto3's work for a request was most of the filter's CPU); the tokens made
once, and only when some recipient's verdict gets as far as its content; an account's
model asked of the store only then, which reads it only when its version is not the one
the process holds (JunkFilterStore.model: the adapters cache decoded models).

A failure of the filter's storage never loses mail: a TransientFailure propagates, so
the filing is retried (it is idempotent); what the filter cannot read (a damaged model or
state: ValueError), and any fault in reading the message's words, files the copy as if
the filter knew nothing, with the reason `filter-unreadable` and an error logged, so
that the mail still arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mailcore.domain.junk import GTUBE, JunkSignals, JunkVerdict, RecipientFilterState
from mailcore.domain.mailbox import INBOX, JUNK
from mailcore.errors import Conflict
from mailcore.junk.decide import decide
from mailcore.junk.identity import claimed_identities, from_address, proven_identities
from mailcore.junk.tokens import MAX_SCANNED_BYTES, message_tokens
from mailcore.observability import logger

if TYPE_CHECKING:
    from mailcore.domain.envelope import Envelope
    from mailcore.junk.model import JunkModel
    from mailcore.ports.junk import JunkFilterStore

UNREADABLE = "filter-unreadable"
# JunkFilterStore.record_written_to writes up to this many identities at once.
_WRITTEN_TO_BATCH = 25


@dataclass(frozen=True)
class RecipientFiling:
    """Where one account's copy goes, and the verdict kept with it."""

    folder: str
    verdict: JunkVerdict


@dataclass(frozen=True)
class JunkArrival:
    """A message to file and its hosted recipient accounts, as the filter needs it until
    its filing batch's decisions are made: its From address and its signals (GTUBE looked
    for in all its bytes), and only the bytes its tokens are made of (the first
    MAX_SCANNED_BYTES: a batch of ten 25 MiB messages holds 20 MiB for this, not 250)."""

    envelope: Envelope  # its signals with GTUBE found in the bytes
    head: bytes  # raw[:MAX_SCANNED_BYTES], what message_tokens reads of any message
    accounts: tuple[str, ...]
    message_id: str
    address: str | None  # the From address


@dataclass
class _Judged:
    """What every recipient's verdict on one message starts from: its identities and
    signals, made once; its tokens, made at most once and only when asked for."""

    arrival: JunkArrival
    claimed: tuple[str, ...]
    proven: tuple[str, ...]
    identities: tuple[str, ...]
    signals: JunkSignals
    quarantined: bool
    _tokens: frozenset[str] | None = None

    @classmethod
    def of(cls, arrival: JunkArrival) -> _Judged:
        claimed = claimed_identities(arrival.address)
        proven = proven_identities(arrival.envelope, arrival.address)
        signals = arrival.envelope.signals
        verdict = arrival.envelope.verdict
        return cls(replace(arrival, accounts=tuple(dict.fromkeys(arrival.accounts))),
                   tuple(claimed), tuple(proven), tuple(dict.fromkeys((*proven, *claimed))),
                   signals, verdict is not None and verdict.junk)

    def tokens(self) -> frozenset[str]:
        if self._tokens is None:
            self._tokens = message_tokens(self.arrival.head)
        return self._tokens

    def forget_tokens(self) -> None:
        self._tokens = None


class JunkFiling:
    """The filter's decisions for the messages filed by one process."""

    def __init__(self, filters: JunkFilterStore) -> None:
        self.filters = filters

    @staticmethod
    def arrival(envelope: Envelope, raw: bytes, accounts: Sequence[str],
                message_id: str = "") -> JunkArrival:
        # The edge looks for GTUBE in what it accepts over SMTP; submitted mail and mail
        # accepted with verification off are looked at here (the search is linear, memchr).
        signals = envelope.signals
        if not signals.gtube and GTUBE in raw:
            envelope = replace(envelope, signals=JunkSignals(gtube=True, dnsbl=signals.dnsbl))
        # A slice of bytes no longer than the bytes is the same object: no copy for most.
        return JunkArrival(envelope, raw[:MAX_SCANNED_BYTES], tuple(accounts), message_id,
                           from_address(raw))

    def file_for(self, envelope: Envelope, raw: bytes, accounts: Sequence[str],
                 *, message_id: str = "") -> dict[str, RecipientFiling]:
        """Each hosted recipient account's folder and verdict for this message."""
        [filed] = self.file_together([self.arrival(envelope, raw, accounts, message_id)])
        return filed

    def file_together(self, arrivals: Sequence[JunkArrival]
                      ) -> list[dict[str, RecipientFiling]]:
        """file_for of each message, the filter states of all their recipients read at
        once (one request for a whole filing batch: JunkFilterStore.recipient_states)."""
        judged = [_Judged.of(arrival) for arrival in arrivals]
        wanted = list(dict.fromkeys((account, each.identities) for each in judged
                                    for account in each.arrival.accounts))
        states = self._states(wanted, [each.arrival.message_id for each in judged])
        filed = []
        for each in judged:
            filed.append({account: self._filing(each, account,
                                                *states[(account, each.identities)])
                          for account in each.arrival.accounts})
            each.forget_tokens()  # one message's tokens held at a time, not a batch's
        return filed

    def _states(self, wanted: list[tuple[str, tuple[str, ...]]], message_ids: list[str]
                ) -> dict[tuple[str, tuple[str, ...]], tuple[RecipientFilterState, bool]]:
        """Each (account, identities)'s state, and whether it was unreadable. What one
        account's damaged state fails is read again account by account, so that only
        that account's copies are filed as if the filter knew nothing."""
        if not wanted:
            return {}
        try:
            return {want: (state, False) for want, state in
                    zip(wanted, self.filters.recipient_states(wanted), strict=True)}
        except ValueError:
            pass
        states = {}
        for account, identities in wanted:
            try:
                states[(account, identities)] = (
                    self.filters.recipient_state(account, identities), False)
            except ValueError:
                logger.exception("junk filter state unreadable; filed as untrained",
                                 account=account, message_ids=message_ids)
                states[(account, identities)] = (RecipientFilterState(), True)
        return states

    def _filing(self, judged: _Judged, account: str, state: RecipientFilterState,
                unreadable_state: bool) -> RecipientFiling:
        unreadable = [UNREADABLE] if unreadable_state else []
        content = self._content(account, state.model_version, judged.tokens, unreadable,
                                judged.arrival.message_id)
        verdict = decide(signals=judged.signals, quarantined=judged.quarantined,
                         claimed=judged.claimed, proven=judged.proven, state=state,
                         content=content)
        if unreadable:
            verdict = replace(verdict, reasons=(*verdict.reasons, UNREADABLE))
        return RecipientFiling(JUNK if verdict.junk else INBOX, verdict)

    def record_sent(self, sender: str, recipients: Sequence[str]) -> None:
        """A message `sender` submitted: each recipient address and its domain is one the
        account wrote to (safe to repeat: every try of a filing records it)."""
        identities: list[str] = []
        for recipient in recipients:
            address = recipient.strip().lower()
            domain = address.rpartition("@")[2]
            identities.extend(identity for identity in (address, domain) if identity)
        identities = list(dict.fromkeys(identities))
        for start in range(0, len(identities), _WRITTEN_TO_BATCH):
            self.filters.record_written_to(sender, identities[start:start + _WRITTEN_TO_BATCH])

    def _content(self, account: str, version: int, tokens: Callable[[], frozenset[str]],
                 unreadable: list[str], message_id: str) -> Callable[[], float | None]:
        def probability() -> float | None:
            try:
                words = tokens()
            except Exception:  # noqa: BLE001 (the bytes are a stranger's; failing here
                # would fail every try of the filing, and the message would never arrive)
                logger.exception("message tokens unreadable; content not judged",
                                 account=account, message_id=message_id)
                unreadable.append(UNREADABLE)
                return None
            try:
                return self._model(account, version).probability(words)
            except ValueError:
                logger.exception("junk model unreadable; content not judged",
                                 account=account, message_id=message_id)
                unreadable.append(UNREADABLE)
                return None
        return probability

    def _model(self, account: str, version: int) -> JunkModel:
        try:
            return self.filters.model(account, version)
        except Conflict:
            # The learner committed a newer version between the state's read and this one:
            # the newer model is as good an answer (one more read, on that race only).
            version = self.filters.recipient_state(account, ()).model_version
            return self.filters.model(account, version)
