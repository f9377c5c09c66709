"""The ports of the junk filter (issue 29): each account's filter state and the queue of
messages whose lesson may have changed. (Re-exported by mailcore.ports.)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mailcore.domain.junk import (
        FilterSettings,
        HistoryChange,
        LearnedLesson,
        RecipientFilterState,
    )
    from mailcore.junk.model import JunkModel


class JunkFilterStore(Protocol):
    """Each account's filter: settings, sender history, the learned model and what was
    learned from each message. The model is one object per account, versioned; everything
    filing needs of it but the model is read in one request."""

    def recipient_state(self, account: str, identities: Sequence[str]) -> RecipientFilterState:
        """The account's model version and trained counts, settings, and its history with
        each of `identities` (at most 8), in one read."""
        ...

    def recipient_states(self, wanted: Sequence[tuple[str, Sequence[str]]]
                         ) -> list[RecipientFilterState]:
        """recipient_state of each (account, identities), in order, in as few reads as
        the store's batch allows (each account's state and each of its identities read
        once however often wanted: DynamoDB, one BatchGetItem per 100 distinct items)."""
        ...

    def model(self, account: str, version: int) -> JunkModel:
        """The account's model at `version` (an empty one for version 0), read only when
        this process does not hold that version already."""
        ...

    def record_written_to(self, account: str, identities: Sequence[str]) -> None:
        """The account sent mail to each of `identities` (addresses and domains): safe to
        repeat, in one write for up to 25."""
        ...

    def settings(self, account: str) -> FilterSettings: ...

    def save_settings(self, account: str, settings: FilterSettings) -> None: ...

    def lessons(self, account: str, keys: Sequence[str]) -> dict[str, LearnedLesson]:
        """What was learned from each of these messages (by lesson key); absent: nothing."""
        ...

    def commit(self, account: str, base_version: int, model: JunkModel,
               lessons: Mapping[str, LearnedLesson | None],
               history: Mapping[str, HistoryChange]) -> int:
        """Store `model` as the account's next version, the lessons (None: forgotten) and
        the history changes, all in one transaction, if the account's model is still at
        `base_version`; else raise Conflict (another learner came first: read again and
        redo). The new version."""
        ...


class JunkLessons(Protocol):
    """The queue of (account, message id) whose keywords, and so lesson, changed."""

    def notify(self, account: str, message_ids: Sequence[str]) -> None: ...
