"""The learner's redo when another learner of the same account commits first, and the
notifying mailboxes when the queue fails (services.junk_learning, over the memory ports)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from mailcore.adapters.memory.junk import InMemoryJunkFilters, InMemoryJunkLessons
from mailcore.adapters.memory.mailbox import InMemoryMailboxRepository
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.junk import HistoryChange, LearnedLesson, Lesson
from mailcore.domain.mailbox import StoredMessage
from mailcore.errors import StorageUnavailable, TransientFailure
from mailcore.junk.model import JunkModel
from mailcore.parsing.bounded import summarise
from mailcore.services.junk_learning import COMMIT_ATTEMPTS, LessonNotifyingMailboxes, learn

BOB = "bob@hamburger.edu"


class Mail:
    def __init__(self) -> None:
        self.mailboxes = InMemoryMailboxRepository()
        self.store = InMemoryMessageStore()

    def file(self, words: str, flags: frozenset[str] = frozenset()) -> str:
        raw = (f"From: offers@junk.example\r\nTo: {BOB}\r\nSubject: {words}\r\n\r\n"
               f"{words}\r\n").encode()
        message_id = new_message_id()
        key = self.store.put(message_id, raw, Envelope("offers@junk.example", (BOB,),
                                                       "192.0.2.1", "junk.example", True))
        self.mailboxes.file(StoredMessage(
            account=BOB, message_id=message_id, folder="Inbox",
            received_at=datetime.now(UTC), raw_key=key, size=len(raw),
            summary=summarise(raw), flags=flags, accepted_id=message_id))
        return message_id


class RacedFilters(InMemoryJunkFilters):
    """Filters where another learner of the account commits just before this one, for the
    first `races` commits: as two learn_junk invocations would, each with its notice."""

    def __init__(self, mail: Mail, races: int) -> None:
        super().__init__()
        self._mail, self._races, self._other_learning = mail, races, False

    def commit(self, account: str, base_version: int, model: JunkModel,
               lessons: Mapping[str, LearnedLesson | None],
               history: Mapping[str, HistoryChange]) -> int:
        if self._races and not self._other_learning:
            self._races -= 1
            other = self._mail.file(f"another cheap offer {self._races}",
                                    frozenset({"$Junk"}))
            self._other_learning = True
            try:
                learn([(account, other)], self._mail.mailboxes, self._mail.store, self)
            finally:
                self._other_learning = False
        return super().commit(account, base_version, model, lessons, history)


def test_a_learner_that_another_came_before_reads_again_and_both_lessons_count() -> None:
    mail = Mail()
    filters = RacedFilters(mail, races=1)
    mine = mail.file("cheap pills casino", frozenset({"$Junk"}))
    result = learn([(BOB, mine)], mail.mailboxes, mail.store, filters)
    assert (result.learned, filters.versions[BOB]) == (1, 2)
    state = filters.recipient_state(BOB, ())
    assert (state.trained_junk, state.trained_not_junk) == (2, 0)
    assert filters.lessons(BOB, [mine])[mine].lesson is Lesson.JUNK


def test_a_learner_that_always_comes_second_leaves_its_notice_for_later() -> None:
    mail = Mail()
    filters = RacedFilters(mail, races=COMMIT_ATTEMPTS)
    mine = mail.file("cheap pills casino", frozenset({"$Junk"}))
    with pytest.raises(TransientFailure):
        learn([(BOB, mine)], mail.mailboxes, mail.store, filters)
    assert filters.lessons(BOB, [mine]) == {}  # the others' lessons only
    assert filters.recipient_state(BOB, ()).trained_junk == COMMIT_ATTEMPTS


class BrokenQueue:
    def __init__(self) -> None:
        self.tries = 0

    def notify(self, account: str, message_ids: Sequence[str]) -> None:
        self.tries += 1
        raise StorageUnavailable("queue unavailable")


def test_a_notice_that_cannot_be_queued_never_fails_the_change() -> None:
    mail, queue = Mail(), BrokenQueue()
    message_id = mail.file("hello")
    mailboxes = LessonNotifyingMailboxes(mail.mailboxes, queue)
    changed = mailboxes.update(BOB, message_id, lambda message: replace(
        message, flags=message.flags | {"$Junk"}))
    assert "$Junk" in changed.flags and "$Junk" in mail.mailboxes.get(BOB, message_id).flags
    assert queue.tries == 1


def test_only_a_change_of_lesson_is_notified() -> None:
    mail, queue = Mail(), InMemoryJunkLessons()
    message_id = mail.file("hello")
    mailboxes = LessonNotifyingMailboxes(mail.mailboxes, queue)

    def flags(*names: str) -> None:
        mailboxes.update(BOB, message_id, lambda message: replace(
            message, flags=frozenset(names)))

    flags("seen")  # no lesson before or after
    flags("seen", "$Junk")  # junk
    flags("$Junk", "flagged")  # still junk
    flags("$Junk", "$NotJunk")  # both: no lesson
    flags("$NotJunk")  # not junk
    assert queue.notices == [(BOB, message_id)] * 3


class ChangeOfMindFilters(InMemoryJunkFilters):
    """Filters where, while this learner works (at its read of the lessons, or at its
    commit), the owner changes the message's keywords and a second learn_junk invocation,
    with that change's notice, runs to its end: SQS's standard queue delivers the two
    notices to two invocations at once."""

    def __init__(self, mail: Mail, at: str, flags: frozenset[str]) -> None:
        super().__init__()
        self._mail, self._at, self._flags = mail, at, flags
        self.message_id = ""

    def _change_of_mind(self, point: str) -> None:
        if self._at != point or not self.message_id:
            return
        message_id, self.message_id = self.message_id, ""
        self._mail.mailboxes.update(BOB, message_id, lambda message: replace(
            message, flags=self._flags))
        learn([(BOB, message_id)], self._mail.mailboxes, self._mail.store, self)

    def lessons(self, account: str, keys: Sequence[str]) -> dict[str, LearnedLesson]:
        self._change_of_mind("lessons")
        return super().lessons(account, keys)

    def commit(self, account: str, base_version: int, model: JunkModel,
               lessons: Mapping[str, LearnedLesson | None],
               history: Mapping[str, HistoryChange]) -> int:
        self._change_of_mind("commit")
        return super().commit(account, base_version, model, lessons, history)


@pytest.mark.parametrize("at", ["lessons", "commit"])
def test_a_change_of_mind_while_another_learner_works_ends_in_the_current_lesson(
        at: str) -> None:
    mail = Mail()
    filters = ChangeOfMindFilters(mail, at, frozenset({"$NotJunk"}))
    mine = mail.file("cheap pills casino", frozenset({"$Junk"}))
    filters.message_id = mine  # the owner says "not junk" while this learner works
    learn([(BOB, mine)], mail.mailboxes, mail.store, filters)
    assert "$NotJunk" in mail.mailboxes.get(BOB, mine).flags
    assert filters.lessons(BOB, [mine])[mine].lesson is Lesson.NOT_JUNK
    state = filters.recipient_state(BOB, ())
    assert (state.trained_junk, state.trained_not_junk) == (0, 1)


def test_a_change_of_mind_and_back_while_a_learner_commits_ends_in_the_current_lesson() -> None:
    mail = Mail()
    filters = ChangeOfMindFilters(mail, "commit", frozenset({"$Junk"}))
    mine = mail.file("cheap pills casino", frozenset({"$Junk"}))
    learn([(BOB, mine)], mail.mailboxes, mail.store, filters)  # learned as junk
    mail.mailboxes.update(BOB, mine, lambda message: replace(
        message, flags=frozenset({"$NotJunk"})))
    # This learner read "not junk"; before it commits, the owner says "junk" again, and
    # that notice's learner finds junk already learned (nothing to commit).
    filters.message_id = mine
    learn([(BOB, mine)], mail.mailboxes, mail.store, filters)
    assert filters.lessons(BOB, [mine])[mine].lesson is Lesson.JUNK
    state = filters.recipient_state(BOB, ())
    assert (state.trained_junk, state.trained_not_junk) == (1, 0)


def test_a_message_whose_words_cannot_be_read_never_stops_the_other_lessons(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import mailcore.junk.tokens as tokens

    made = tokens.message_tokens

    def tokenizer_with_a_fault(raw: bytes) -> frozenset[str]:
        if b"poison" in raw:
            raise TypeError("a parser's fault on a stranger's bytes")
        return made(raw)

    monkeypatch.setattr(tokens, "message_tokens", tokenizer_with_a_fault)
    mail, filters = Mail(), InMemoryJunkFilters()
    poison = mail.file("poison offer", frozenset({"$Junk"}))
    other = mail.file("cheap pills casino", frozenset({"$Junk"}))
    for _ in range(2):  # the batch again, as SQS would redeliver it: the same
        learn([(BOB, poison), (BOB, other)], mail.mailboxes, mail.store, filters)
        assert set(filters.lessons(BOB, [poison, other])) == {other}
        assert filters.recipient_state(BOB, ()).trained_junk == 1
