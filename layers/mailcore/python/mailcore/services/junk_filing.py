"""The junk filter at filing time (issue 29): where each hosted recipient's copy of an
inbound message goes, Inbox or Junk, and why; and the trust a sent message teaches.

Costs, per message: the From identities once; per recipient account one read of its
filter state (`JunkFilterStore.recipient_state`, one request); the message's tokens made
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
from mailcore.junk.tokens import message_tokens
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


class JunkFiling:
    """The filter's decisions for the messages filed by one process."""

    def __init__(self, filters: JunkFilterStore) -> None:
        self.filters = filters

    def file_for(self, envelope: Envelope, raw: bytes, accounts: Sequence[str],
                 *, message_id: str = "") -> dict[str, RecipientFiling]:
        """Each hosted recipient account's folder and verdict for this message."""
        address = from_address(raw)
        claimed = claimed_identities(address)
        proven = proven_identities(envelope, address)
        # The edge looks for GTUBE in what it accepts over SMTP; submitted mail and mail
        # accepted with verification off are looked at here (the search is linear, memchr).
        signals = envelope.signals
        if not signals.gtube and GTUBE in raw:
            signals = JunkSignals(gtube=True, dnsbl=signals.dnsbl)
        quarantined = envelope.verdict is not None and envelope.verdict.junk
        identities = tuple(dict.fromkeys((*proven, *claimed)))
        tokens: list[frozenset[str]] = []  # made at most once, for every recipient

        def tokens_of_message() -> frozenset[str]:
            if not tokens:
                tokens.append(message_tokens(raw))
            return tokens[0]

        filed: dict[str, RecipientFiling] = {}
        for account in dict.fromkeys(accounts):
            unreadable: list[str] = []
            try:
                state = self.filters.recipient_state(account, identities)
            except ValueError:
                logger.exception("junk filter state unreadable; filed as untrained",
                                 account=account, message_id=message_id)
                state, unreadable = RecipientFilterState(), [UNREADABLE]
            content = self._content(account, state.model_version, tokens_of_message,
                                    unreadable, message_id)
            verdict = decide(signals=signals, quarantined=quarantined, claimed=claimed,
                             proven=proven, state=state, content=content)
            if unreadable:
                verdict = replace(verdict, reasons=(*verdict.reasons, UNREADABLE))
            filed[account] = RecipientFiling(JUNK if verdict.junk else INBOX, verdict)
        return filed

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
