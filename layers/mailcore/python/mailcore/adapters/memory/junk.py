"""The junk filter's ports in memory, for tests: each account's state in dicts, the model
kept as its bytes (so that what a test learns went through the same encoding as in AWS)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from mailcore.domain.junk import (
    FilterSettings,
    HistoryChange,
    LearnedLesson,
    RecipientFilterState,
    SenderHistory,
)
from mailcore.errors import Conflict
from mailcore.junk.model import JunkModel

# As in DynamoDB, a commit is one transaction of at most 100 items: the model, its state,
# one per lesson and one per identity whose history changes.
COMMIT_ITEMS = 100


class InMemoryJunkFilters:
    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.models: dict[str, bytes] = {}
        self.settings_of: dict[str, FilterSettings] = {}
        self.history: dict[str, dict[str, SenderHistory]] = {}
        self.learned: dict[str, dict[str, LearnedLesson]] = {}
        self.state_reads = 0  # requests for filter states (one per call)
        self.model_reads = 0
        self._cached: dict[str, tuple[int, bytes]] = {}  # the "process's" model per account

    def recipient_state(self, account: str, identities: Sequence[str]) -> RecipientFilterState:
        [state] = self.recipient_states([(account, identities)])
        return state

    def recipient_states(self, wanted: Sequence[tuple[str, Sequence[str]]]
                         ) -> list[RecipientFilterState]:
        self.state_reads += 1  # one request, as in DynamoDB for up to 100 items
        return [self._state(account, identities) for account, identities in wanted]

    def _state(self, account: str, identities: Sequence[str]) -> RecipientFilterState:
        version = self.versions.get(account, 0)
        model = (JunkModel.from_bytes(self.models[account]) if version
                 else JunkModel.empty())
        known = self.history.get(account, {})
        return RecipientFilterState(
            model_version=version, trained_junk=model.trained_junk,
            trained_not_junk=model.trained_not_junk,
            settings=self.settings_of.get(account, FilterSettings()),
            history={identity: known[identity] for identity in identities
                     if identity in known})

    def model(self, account: str, version: int) -> JunkModel:
        if version == 0:
            return JunkModel.empty()
        if self._cached.get(account, (0, b""))[0] == version:
            return JunkModel.from_bytes(self._cached[account][1])
        if self.versions.get(account, 0) != version:
            raise Conflict(f"model of {account} is not at version {version}")
        self.model_reads += 1
        self._cached[account] = (version, self.models[account])
        return JunkModel.from_bytes(self.models[account])

    def record_written_to(self, account: str, identities: Sequence[str]) -> None:
        known = self.history.setdefault(account, {})
        for identity in identities:
            known[identity] = replace(known.get(identity, SenderHistory()), wrote_to=True)

    def settings(self, account: str) -> FilterSettings:
        return self.settings_of.get(account, FilterSettings())

    def save_settings(self, account: str, settings: FilterSettings) -> None:
        self.settings_of[account] = settings

    def lessons(self, account: str, keys: Sequence[str]) -> dict[str, LearnedLesson]:
        learned = self.learned.get(account, {})
        return {key: learned[key] for key in keys if key in learned}

    def commit(self, account: str, base_version: int, model: JunkModel,
               lessons: Mapping[str, LearnedLesson | None],
               history: Mapping[str, HistoryChange]) -> int:
        changes = sum(bool(change.junk or change.not_junk) for change in history.values())
        if 2 + len(lessons) + changes > COMMIT_ITEMS:
            raise ValueError(f"a junk filter commit is one transaction of at most "
                             f"{COMMIT_ITEMS} items: commit fewer lessons at a time")
        if self.versions.get(account, 0) != base_version:
            raise Conflict(f"model of {account} moved on from version {base_version}")
        self._cached.pop(account, None)
        self.models[account] = model.to_bytes()
        self.versions[account] = base_version + 1
        learned = self.learned.setdefault(account, {})
        for key, lesson in lessons.items():
            if lesson is None:
                learned.pop(key, None)
            else:
                learned[key] = lesson
        known = self.history.setdefault(account, {})
        for identity, change in history.items():
            if not (change.junk or change.not_junk):
                continue  # as in the table: nothing to add makes no history
            was = known.get(identity, SenderHistory())
            known[identity] = replace(was, junk=max(0, was.junk + change.junk),
                                      not_junk=max(0, was.not_junk + change.not_junk))
        return base_version + 1


class InMemoryJunkLessons:
    """The lessons queue: what was notified, in order (a test may deliver it in any)."""

    def __init__(self) -> None:
        self.notices: list[tuple[str, str]] = []

    def notify(self, account: str, message_ids: Sequence[str]) -> None:
        self.notices.extend((account, message_id) for message_id in message_ids)
