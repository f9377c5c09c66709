"""The JunkFilterStore port in memory and on DynamoDB (moto) alike: what filing needs of an
account's filter in one read, the history it keeps, settings that leave the model alone,
commits conditioned on the model's version, lessons kept and forgotten, and the model read
once per version."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from mailcore.adapters.aws.clients import dynamodb_client
from mailcore.adapters.aws.dynamodb_junk import DynamoJunkFilters
from mailcore.adapters.memory.junk import InMemoryJunkFilters
from mailcore.domain.junk import (
    FilterSettings,
    HistoryChange,
    LearnedLesson,
    Lesson,
    RecipientFilterState,
    SenderHistory,
)
from mailcore.errors import Conflict
from mailcore.junk.model import JunkModel
from mailcore.ports import JunkFilterStore
from tests.contract.conftest import BACKINGS, _moto

BOB, CAROL = "bob@hamburger.edu", "carol@hamburger.edu"
ALICE, CREPES = "alice@crepes.fr", "crepes.fr"
SPAMMER, SPAM = "win@prizes.example", "prizes.example"


@dataclass
class JunkSide:
    filters: JunkFilterStore
    requests: Callable[[], int]  # storage requests made so far


@pytest.fixture(params=BACKINGS)
def side(request: pytest.FixtureRequest) -> Iterator[JunkSide]:
    stack = _moto(request)
    if stack is None:
        memory = InMemoryJunkFilters()
        yield JunkSide(memory, lambda: memory.state_reads + memory.model_reads)
        return
    client = dynamodb_client()
    made: list[str] = []

    def count(event_name: str, **_: object) -> None:
        made.append(event_name)

    client.meta.events.register("before-call.dynamodb", count)
    try:
        yield JunkSide(DynamoJunkFilters(client, stack.outputs["MailboxTableName"]),
                       lambda: len(made))
    finally:
        client.meta.events.unregister("before-call.dynamodb", count)


def _trained(junk: int, not_junk: int) -> JunkModel:
    model = JunkModel.empty()
    for number in range(junk):
        model.learn({"cheap", "pills", f"offer{number}"}, Lesson.JUNK)
    for number in range(not_junk):
        model.learn({"minutes", "meeting", f"agenda{number}"}, Lesson.NOT_JUNK)
    return model


def test_an_untaught_account_has_an_empty_state_read_in_one_request(side: JunkSide):
    before = side.requests()
    state = side.filters.recipient_state(BOB, [ALICE, CREPES])
    assert side.requests() - before == 1
    assert state == RecipientFilterState() and not state.trained
    assert side.filters.settings(BOB) == FilterSettings()
    assert side.filters.lessons(BOB, ["some-key"]) == {}
    empty = side.filters.model(BOB, 0)
    assert (empty.trained_junk, empty.trained_not_junk, empty.token_count) == (0, 0, 0)


def test_history_and_whom_the_account_wrote_to_come_in_the_one_read(side: JunkSide):
    filters = side.filters
    filters.record_written_to(BOB, [ALICE, CREPES, ALICE])
    filters.record_written_to(BOB, [ALICE, CREPES])  # again on purpose: nothing changes
    version = filters.commit(BOB, 0, _trained(1, 1), {}, {
        SPAMMER: HistoryChange(junk=1), SPAM: HistoryChange(junk=1),
        ALICE: HistoryChange(not_junk=1)})
    filters.commit(BOB, version, _trained(2, 1), {}, {SPAMMER: HistoryChange(junk=1)})
    before = side.requests()
    state = filters.recipient_state(BOB, [ALICE, CREPES, SPAMMER, SPAM, "new@else.example"])
    assert side.requests() - before == 1
    assert dict(state.history) == {
        ALICE: SenderHistory(wrote_to=True, not_junk=1), CREPES: SenderHistory(wrote_to=True),
        SPAMMER: SenderHistory(junk=2), SPAM: SenderHistory(junk=1)}
    assert (state.model_version, state.trained_junk, state.trained_not_junk) == (2, 2, 1)
    # Only what was asked for, and only the account's own.
    assert dict(filters.recipient_state(BOB, [SPAM]).history) == {SPAM: SenderHistory(junk=1)}
    assert filters.recipient_state(CAROL, [ALICE, SPAMMER]) == RecipientFilterState()


def test_a_filing_batch_reads_every_recipient_s_state_in_one_request(side: JunkSide):
    filters = side.filters
    filters.record_written_to(BOB, [ALICE, CREPES])
    filters.commit(CAROL, 0, _trained(3, 2), {}, {SPAMMER: HistoryChange(junk=1)})
    senders = [(ALICE, CREPES), (SPAMMER, SPAM), ("news@crepes.fr", CREPES, ALICE, SPAM)]
    # Ten messages, each to Bob, or to Bob and Carol, each with 2 to 4 identities: the
    # same account's state and the same identity asked for again and again.
    wanted = [(account, senders[number % 3]) for number in range(10)
              for account in ((BOB, CAROL) if number % 2 else (BOB,))]
    before = side.requests()

    states = filters.recipient_states(wanted)

    assert side.requests() - before == 1
    assert len(states) == len(wanted)
    for (account, identities), state in zip(wanted, states, strict=True):
        assert state == filters.recipient_state(account, identities)
    bob_alice = states[wanted.index((BOB, (ALICE, CREPES)))]
    assert dict(bob_alice.history) == {ALICE: SenderHistory(wrote_to=True),
                                       CREPES: SenderHistory(wrote_to=True)}
    carol_spammer = states[wanted.index((CAROL, (SPAMMER, SPAM)))]
    assert dict(carol_spammer.history) == {SPAMMER: SenderHistory(junk=1)}
    assert (carol_spammer.model_version, carol_spammer.trained_junk) == (1, 3)
    assert states[wanted.index((BOB, (SPAMMER, SPAM)))] == RecipientFilterState()


def test_more_than_a_request_holds_is_read_in_as_few_as_it_takes(side: JunkSide):
    filters = side.filters
    many = [f"sender{number}@crepes.fr" for number in range(40)]
    filters.record_written_to(CAROL, many[-2:])
    wanted = [(BOB, many), (CAROL, many)]  # 2 states and 160 history items: 162 keys
    before = side.requests()

    bob, carol = filters.recipient_states(wanted)

    # DynamoDB: 100 keys per BatchGetItem; memory: one request per call.
    assert side.requests() - before == (1 if isinstance(filters, InMemoryJunkFilters) else 2)
    assert bob == RecipientFilterState()
    assert dict(carol.history) == {identity: SenderHistory(wrote_to=True)
                                   for identity in many[-2:]}
    assert filters.recipient_states([]) == []


def test_history_taken_back_comes_down_and_never_below_nothing(side: JunkSide):
    filters = side.filters
    version = filters.commit(BOB, 0, _trained(1, 0), {}, {SPAMMER: HistoryChange(junk=1)})
    filters.commit(BOB, version, _trained(0, 1), {}, {
        SPAMMER: HistoryChange(junk=-1, not_junk=1)})
    assert dict(filters.recipient_state(BOB, [SPAMMER]).history) == {
        SPAMMER: SenderHistory(not_junk=1)}


def test_settings_round_trip_without_disturbing_the_model(side: JunkSide):
    filters = side.filters
    settings = FilterSettings(allow=(ALICE, CREPES), block=(SPAM,), junk_days=7)
    filters.save_settings(BOB, settings)  # before any model: the first commit keeps them
    assert filters.settings(BOB) == settings
    version = filters.commit(BOB, 0, _trained(3, 2), {}, {})
    state = filters.recipient_state(BOB, [])
    assert (state.settings, state.model_version, state.trained_junk,
            state.trained_not_junk) == (settings, version, 3, 2)

    cleared = FilterSettings(junk_days=30)
    filters.save_settings(BOB, cleared)
    filters.save_settings(BOB, cleared)  # twice on purpose
    state = filters.recipient_state(BOB, [])
    assert (state.settings, state.model_version, state.trained_junk) == (cleared, version, 3)
    assert filters.commit(BOB, version, _trained(3, 3), {}, {}) == version + 1  # not moved
    assert filters.settings(BOB) == cleared
    assert filters.settings(CAROL) == FilterSettings()


def test_a_commit_on_a_stale_version_is_a_conflict_and_changes_nothing(side: JunkSide):
    filters = side.filters
    first = _trained(1, 0)
    assert filters.commit(BOB, 0, first, {"k1": LearnedLesson(Lesson.JUNK, (SPAM,))},
                          {SPAM: HistoryChange(junk=1)}) == 1
    with pytest.raises(Conflict):  # a second learner that also started from nothing
        filters.commit(BOB, 0, _trained(0, 1), {"k2": LearnedLesson(Lesson.NOT_JUNK)},
                       {ALICE: HistoryChange(not_junk=1)})
    with pytest.raises(Conflict):  # ... or from a version not there yet
        filters.commit(BOB, 5, _trained(0, 1), {}, {})
    state = filters.recipient_state(BOB, [SPAM, ALICE])
    assert (state.model_version, state.trained_junk, state.trained_not_junk) == (1, 1, 0)
    assert dict(state.history) == {SPAM: SenderHistory(junk=1)}
    assert set(filters.lessons(BOB, ["k1", "k2"])) == {"k1"}
    assert filters.model(BOB, 1).to_bytes() == first.to_bytes()
    assert filters.commit(BOB, 1, _trained(1, 1), {}, {}) == 2
    with pytest.raises(Conflict):  # the model read at a version it moved on from
        filters.model(BOB, 1)
    assert filters.commit(CAROL, 0, _trained(0, 1), {}, {}) == 1  # accounts apart


def test_lessons_are_kept_changed_and_forgotten(side: JunkSide):
    filters = side.filters
    junk = LearnedLesson(Lesson.JUNK, (SPAMMER, SPAM))
    version = filters.commit(BOB, 0, _trained(2, 0), {"k1": junk, "k2": junk}, {})
    assert filters.lessons(BOB, ["k1", "k2", "k3", "k1"]) == {"k1": junk, "k2": junk}
    changed = LearnedLesson(Lesson.NOT_JUNK, (ALICE,))
    filters.commit(BOB, version, _trained(1, 1), {"k1": None, "k2": changed, "k3": None}, {})
    assert filters.lessons(BOB, ["k1", "k2", "k3"]) == {"k2": changed}
    assert filters.lessons(CAROL, ["k2"]) == {}


def test_more_than_one_transaction_holds_is_refused_whole(side: JunkSide):
    filters = side.filters
    lessons: dict[str, LearnedLesson | None] = {
        f"k{number}": LearnedLesson(Lesson.JUNK) for number in range(90)}
    history = {f"sender{number}.example": HistoryChange(junk=1) for number in range(9)}
    with pytest.raises(ValueError, match="commit fewer lessons"):
        filters.commit(BOB, 0, _trained(1, 0), lessons, history)  # 2 + 90 + 9 items
    assert filters.recipient_state(BOB, []).model_version == 0
    del history["sender0.example"]  # 100 items: one transaction
    assert filters.commit(BOB, 0, _trained(1, 0), lessons, history) == 1
    assert len(filters.lessons(BOB, list(lessons))) == 90


def test_the_model_round_trips_and_is_read_once_per_version(side: JunkSide):
    filters = side.filters
    model = _trained(25, 21)
    version = filters.commit(BOB, 0, model, {}, {})
    before = side.requests()
    read = filters.model(BOB, version)
    assert side.requests() - before == 1
    assert read.to_bytes() == model.to_bytes()
    assert (read.trained_junk, read.trained_not_junk) == (25, 21)
    assert read.probability({"cheap", "pills"}) == model.probability({"cheap", "pills"})
    again = filters.model(BOB, version)
    assert side.requests() - before == 1  # the same version: no request
    assert again.to_bytes() == model.to_bytes()

    # A model changed by its reader and never committed (a learner that failed midway)
    # leaves the process's copy as it was read.
    again.learn({"cheap", "pills"}, Lesson.NOT_JUNK)
    again.unlearn({"cheap", "pills", "offer1"}, Lesson.JUNK)
    assert filters.model(BOB, version).to_bytes() == model.to_bytes()
    assert filters.model(BOB, version).probability({"cheap"}) == model.probability({"cheap"})

    newer = filters.commit(BOB, version, again, {}, {})
    before = side.requests()
    assert filters.model(BOB, newer).to_bytes() == again.to_bytes()
    assert filters.model(BOB, newer).to_bytes() == again.to_bytes()
    assert side.requests() - before == 1  # the new version read once
