"""Learning junk from where mail is put (issue 29 item 3).

A message's lesson is what its keywords say now (mailcore.domain.junk). Whoever changes
them notifies the lessons queue (LessonNotifyingMailboxes, installed around the mailboxes
of the API and of IMAP), and the learner reconciles each notified message: it reads what
the message teaches now and what was learned from it, and when they differ it unlearns the
old lesson and learns the new one, committed with the model's version as the condition.
So a notice delivered twice, notices in any order and a change of mind all end in the same
model: the one that the messages' current keywords describe.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from mailcore import s3_keys
from mailcore.domain.junk import HistoryChange, LearnedLesson, Lesson, lesson_key, lesson_of
from mailcore.domain.mailbox import Folder, FolderChanges, Page, StoredMessage, UidEntry
from mailcore.errors import Conflict, MailError, MessageNotFound, TransientFailure
from mailcore.observability import logger
from mailcore.ports import JunkFilterStore, JunkLessons, Mailboxes, RawMessageStore

if TYPE_CHECKING:
    from mailcore.junk.model import JunkModel

# Lessons committed in one transaction: each changes its LESSON item, and the identities'
# history items beside the model's two; DynamoDB takes at most 100 items in one.
LESSONS_PER_COMMIT = 25
# Another learner of the same account came first: read again and redo, this many times,
# then leave the notices to come back from the queue.
COMMIT_ATTEMPTS = 4


class LessonNotifyingMailboxes:
    """Mailboxes that notify `lessons` of every message whose lesson an update or a copy
    changed. A failed notice is logged and never fails the change the user made: the
    message keeps its keywords, and the next change of them notifies again."""

    def __init__(self, inner: Mailboxes, lessons: JunkLessons) -> None:
        self.inner = inner
        self._lessons = lessons

    def _notify(self, account: str, message_id: str) -> None:
        try:
            self._lessons.notify(account, [message_id])
        except MailError:
            logger.exception("junk lesson not queued", account=account, message_id=message_id)

    # -- MailboxWriter: what may change a lesson -------------------------------------------
    def update(self, account: str, message_id: str,
               change: Callable[[StoredMessage], StoredMessage]) -> StoredMessage:
        before: list[StoredMessage] = []

        def remembering(message: StoredMessage) -> StoredMessage:
            before[:] = [message]  # the change may run again: the last state it saw
            return change(message)

        changed = self.inner.update(account, message_id, remembering)
        if before and lesson_of(before[0].flags) != lesson_of(changed.flags):
            self._notify(account, message_id)
        return changed

    def copy(self, account: str, message_id: str, folder: str) -> StoredMessage:
        copied = self.inner.copy(account, message_id, folder)
        if lesson_of(copied.flags) is not None:
            self._notify(account, copied.message_id)
        return copied

    # -- the rest, as the inner mailboxes do it ---------------------------------------------
    def file(self, message: StoredMessage, *, holding: int = 0) -> bool:
        return self.inner.file(message, holding=holding)

    def file_together(self, arrivals: Sequence[tuple[StoredMessage, int]]) -> list[bool]:
        return self.inner.file_together(arrivals)

    def create_folder(self, account: str, name: str) -> Folder:
        return self.inner.create_folder(account, name)

    def rename_folder(self, account: str, folder: Folder, new_name: str) -> Folder:
        return self.inner.rename_folder(account, folder, new_name)

    def delete_folder(self, account: str, folder: Folder) -> None:
        self.inner.delete_folder(account, folder)

    def open_folder(self, account: str, folder_id: str) -> Folder:
        return self.inner.open_folder(account, folder_id)

    def remove(self, account: str, message_id: str,
               where: tuple[str, int] | None = None) -> tuple[StoredMessage, bool]:
        return self.inner.remove(account, message_id, where)

    def get(self, account: str, message_id: str) -> StoredMessage:
        return self.inner.get(account, message_id)

    def raw_keys(self, account: str, message_ids: Sequence[str]) -> dict[str, str]:
        return self.inner.raw_keys(account, message_ids)

    def list_folder(self, account: str, folder: str, limit: int, cursor: str | None) -> Page:
        return self.inner.list_folder(account, folder, limit, cursor)

    def list_received_before(self, account: str, folder: str, before: datetime, limit: int,
                             cursor: str | None) -> Page:
        return self.inner.list_received_before(account, folder, before, limit, cursor)

    def folders(self, account: str) -> list[Folder]:
        return self.inner.folders(account)

    def folder_named(self, account: str, name: str) -> Folder:
        return self.inner.folder_named(account, name)

    def folder_by_id(self, account: str, folder_id: str) -> Folder:
        return self.inner.folder_by_id(account, folder_id)

    def search(self, account: str, folder: str | None, words: str, limit: int,
               cursor: str | None) -> Page:
        return self.inner.search(account, folder, words, limit, cursor)

    def list_by_uid(self, account: str, folder: str, first_uid: int,
                    limit: int | None = None) -> list[UidEntry]:
        return self.inner.list_by_uid(account, folder, first_uid, limit)

    def changes_since(self, account: str, folder: str, modseq: int,
                      read_highest: int | None = None) -> FolderChanges:
        return self.inner.changes_since(account, folder, modseq, read_highest)

    def highest_modseq(self, account: str, folder: str) -> int:
        return self.inner.highest_modseq(account, folder)


@dataclass
class LearningResult:
    learned: int = 0  # lessons learned or changed
    unlearned: int = 0  # lessons forgotten (the message teaches nothing now)
    unchanged: int = 0  # already learned as the message teaches, or nothing to learn


@dataclass(frozen=True)
class _Wanted:
    """A message to reconcile: its lesson key, what it teaches now, where its bytes are."""

    key: str
    lesson: Lesson | None
    raw_key: str


@dataclass
class _Material:
    """What learning a message needs of its bytes, read once however often a commit is
    redone (accepted bytes never change)."""

    tokens: frozenset[str]
    identities: tuple[str, ...]


@dataclass
class _Plan:
    lessons: dict[str, LearnedLesson | None] = field(default_factory=dict)
    history: dict[str, HistoryChange] = field(default_factory=dict)

    def count(self, identities: Iterable[str], lesson: Lesson, step: int) -> None:
        for identity in identities:
            was = self.history.get(identity, HistoryChange())
            self.history[identity] = (
                HistoryChange(was.junk + step, was.not_junk) if lesson is Lesson.JUNK
                else HistoryChange(was.junk, was.not_junk + step))


def learn(notices: Iterable[tuple[str, str]], mailboxes: Mailboxes, raw_store: RawMessageStore,
          filters: JunkFilterStore) -> LearningResult:
    """Reconcile each account's filter with what the notified (account, message id)s
    teach now. Raises TransientFailure when other learners kept coming first, StorageUnavailable
    from the stores; what was committed before stays (learning it again changes nothing)."""
    by_account: dict[str, dict[str, None]] = defaultdict(dict)
    for account, message_id in notices:
        by_account[account][message_id] = None  # in order, each once
    result = LearningResult()
    for account, message_ids in by_account.items():
        ids = list(message_ids)
        for start in range(0, len(ids), LESSONS_PER_COMMIT):
            _reconcile(account, ids[start:start + LESSONS_PER_COMMIT], mailboxes, raw_store,
                       filters, result)
    return result


def _wanted(account: str, message_ids: Sequence[str], mailboxes: Mailboxes) -> list[_Wanted]:
    """What each notified message teaches now, by lesson key. A message gone teaches
    nothing new (its lesson stays as it was learned); so does a draft, whose bytes change
    with every save. Copies of one message share a key: one that teaches wins over one that
    says nothing (a copy into Junk of a message kept in the Inbox teaches junk)."""
    found: dict[str, _Wanted] = {}
    for message_id in message_ids:
        try:
            message = mailboxes.get(account, message_id)
        except MessageNotFound:
            continue
        if message.accepted_id is None:
            continue
        lesson = lesson_of(message.flags)
        key = lesson_key(message)
        if lesson is None and key in found:
            continue
        found[key] = _Wanted(key, lesson, message.raw_key)
    return list(found.values())


def _reconcile(account: str, message_ids: Sequence[str], mailboxes: Mailboxes,
               raw_store: RawMessageStore, filters: JunkFilterStore,
               result: LearningResult) -> None:
    """Commit what the messages teach, and then read them again: the commit's condition
    is the model's version, not the messages' keywords, so an owner's change of mind
    between this learner's read and its commit (whose own notice's learner may have found
    nothing to do, or committed first) would leave the stale lesson learned. Read again
    after the commit, an unchanged state is one that any later change's learner starts
    from (it reads the version this commit made)."""
    materials: dict[str, _Material | None] = {}
    wanted = _wanted(account, message_ids, mailboxes)
    for _ in range(COMMIT_ATTEMPTS):
        try:
            counts = _attempt(account, wanted, raw_store, filters, materials)
        except Conflict:
            wanted = _wanted(account, message_ids, mailboxes)
            continue
        result.learned += counts.learned
        result.unlearned += counts.unlearned
        if not counts.learned and not counts.unlearned:
            result.unchanged += counts.unchanged
            return
        now = _wanted(account, message_ids, mailboxes)
        if now == wanted:
            result.unchanged += counts.unchanged
            return
        wanted = now  # changed while learning: reconcile again with what they teach now
    raise TransientFailure(f"junk model of {account} kept changing while learning")


def _attempt(account: str, wanted: Sequence[_Wanted], raw_store: RawMessageStore,
             filters: JunkFilterStore, materials: dict[str, _Material | None]
             ) -> LearningResult:
    """One read of the account's model and lessons, and one commit of what changed;
    Conflict when another learner committed since the read."""
    version = filters.recipient_state(account, ()).model_version
    learned = filters.lessons(account, [each.key for each in wanted])
    plan, counts = _Plan(), LearningResult()
    model: JunkModel | None = None  # read only when something is to change (300 KB at most)
    for each in wanted:
        before = learned.get(each.key)
        if (before.lesson if before else None) == each.lesson:
            counts.unchanged += 1
            continue
        if each.key not in materials:
            materials[each.key] = _material(each.raw_key, raw_store)
        material = materials[each.key]
        if material is None:  # its bytes are gone: nothing to learn or unlearn from
            counts.unchanged += 1
            continue
        if model is None:
            model = filters.model(account, version)
        _change(model, plan, each, before, material, counts)
    if model is not None and plan.lessons:
        filters.commit(account, version, model, plan.lessons, plan.history)
        logger.info("junk lessons learned", account=account, learned=counts.learned,
                    unlearned=counts.unlearned, model_version=version + 1)
    return counts


def _change(model: JunkModel, plan: _Plan, wanted: _Wanted, before: LearnedLesson | None,
            material: _Material, counts: LearningResult) -> None:
    if before is not None:
        model.unlearn(material.tokens, before.lesson)
        plan.count(before.identities, before.lesson, -1)
    if wanted.lesson is None:
        plan.lessons[wanted.key] = None
        counts.unlearned += 1
        return
    model.learn(material.tokens, wanted.lesson)
    plan.count(material.identities, wanted.lesson, +1)
    plan.lessons[wanted.key] = LearnedLesson(wanted.lesson, material.identities)
    counts.learned += 1


def _material(raw_key: str, raw_store: RawMessageStore) -> _Material | None:
    """The message's tokens and the identities it proved, or None when its bytes are gone.
    Only accepted mail has an envelope (what the edge verified); a message a client
    appended proves no identity."""
    # Imported when first learning: the API and IMAP load this module for the notifying
    # mailboxes alone, and never tokenise.
    from mailcore.junk.identity import from_address, proven_identities
    from mailcore.junk.tokens import message_tokens

    envelope = None
    try:
        if s3_keys.message_id_of_key(raw_key) is None:
            raw = raw_store.get_raw(raw_key)
        else:
            envelope, raw = raw_store.get_message(raw_key)
    except MessageNotFound:
        return None
    try:
        identities = () if envelope is None else tuple(
            proven_identities(envelope, from_address(raw)))
        return _Material(message_tokens(raw), identities)
    except Exception:  # noqa: BLE001 (a stranger's bytes: a fault in reading them must
        # not fail the account's other lessons with it, on every try of the batch)
        logger.exception("junk lesson unreadable; not learned", raw_key=raw_key)
        return None
