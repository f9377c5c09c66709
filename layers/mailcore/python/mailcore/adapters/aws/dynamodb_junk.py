"""Each account's junk filter in the mailbox table, partition JUNK#<account>
(dynamodb_keys): STATE (model version, trained counts, settings), MODEL (the model's
bytes), SENDER#<identity> (junk / not_junk counts), WROTE#<identity>, LESSON#<key>.

Filing reads STATE and the SENDER#/WROTE# items of its messages' identities in one
BatchGetItem per 100 distinct items (a whole filing batch, usually); the model only when
its version is not in this process's cache. The learner writes the model, STATE, the
lessons and the history changes in one transaction, conditioned on the version it started
from. Reads are consistent: a version read here is never older than the last commit, so a
model built on it cannot lose another's work.
"""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.adapters.aws.dynamodb_keys import (
    LESSON_PREFIX,
    junk_lesson_key,
    junk_model_key,
    junk_sender_key,
    junk_state_key,
    junk_wrote_key,
)
from mailcore.domain.junk import (
    FilterSettings,
    HistoryChange,
    LearnedLesson,
    Lesson,
    RecipientFilterState,
    SenderHistory,
)
from mailcore.errors import Conflict, StorageUnavailable
from mailcore.junk.model import JunkModel

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# DynamoDB's limits: keys per BatchGetItem, puts per BatchWriteItem, items and bytes per
# transaction.
BATCH_GET = 100
BATCH_WRITE = 25
TRANSACTION_ITEMS = 100
TRANSACTION_BYTES = 4_000_000
# One account's state is one request: STATE and two items per identity within BATCH_GET;
# recipient_states reads many accounts' in one request per BATCH_GET distinct items.
MAX_IDENTITIES = (BATCH_GET - 1) // 2
ATTEMPTS = 8  # reads of what DynamoDB returned unprocessed (throttled)
# The process's decoded models, bounded by what they hold in memory: a decoded model
# takes about 160 bytes per token (measured with tracemalloc on a 47,870-token model:
# 7.7 MB, from 174 KB of bytes), so 32 MiB holds four models at the token cap, or some
# hundreds of small ones.
MODEL_CACHE_BYTES = 32 * 1024 * 1024
RESIDENT_BYTES_PER_TOKEN = 160


def _back_off(attempt: int) -> None:
    # Jitter only spreads retries apart; it needs no secrecy.
    time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))  # noqa: S311


class SharedModel(JunkModel):
    """A cached model as handed out: it shares the cache's counts until it is first
    changed, then decodes its own from the cached bytes. So filing pays no copy, and a
    learner that changes a model and never commits it leaves the cache as it was read."""

    def __init__(self, cached: JunkModel, encoded: bytes) -> None:
        super().__init__()
        self.__dict__.update(cached.__dict__)  # shallow: the counts are the cache's
        self._shared_encoding: bytes | None = encoded

    def _own(self) -> None:
        if self._shared_encoding is not None:
            fresh = JunkModel.from_bytes(self._shared_encoding)
            self.__dict__.update(fresh.__dict__)
            self._shared_encoding = None

    def learn(self, tokens: Iterable[str], lesson: Lesson) -> None:
        self._own()
        super().learn(tokens, lesson)

    def unlearn(self, tokens: Iterable[str], lesson: Lesson) -> None:
        self._own()
        super().unlearn(tokens, lesson)

    def to_bytes(self) -> bytes:
        return self._shared_encoding if self._shared_encoding is not None else super().to_bytes()


class ModelCache:
    """Decoded models by (account, version), least recently used first out, within a
    budget of bytes held."""

    def __init__(self, budget: int = MODEL_CACHE_BYTES) -> None:
        self.budget = budget
        self.held = 0
        self._entries: OrderedDict[tuple[str, int], tuple[JunkModel, bytes, int]] = (
            OrderedDict())
        self._lock = threading.Lock()

    def get(self, account: str, version: int) -> JunkModel | None:
        with self._lock:
            entry = self._entries.get((account, version))
            if entry is None:
                return None
            self._entries.move_to_end((account, version))
        return SharedModel(entry[0], entry[1])

    def put(self, account: str, version: int, model: JunkModel, encoded: bytes) -> None:
        cost = len(encoded) + RESIDENT_BYTES_PER_TOKEN * model.token_count
        if cost > self.budget:
            return
        with self._lock:
            self._forget(account)  # an account's older versions are not asked for again
            self._entries[(account, version)] = (model, encoded, cost)
            self.held += cost
            while self.held > self.budget:
                _, (_, _, dropped) = self._entries.popitem(last=False)
                self.held -= dropped

    def forget(self, account: str) -> None:
        with self._lock:
            self._forget(account)

    def _forget(self, account: str) -> None:
        for key in [key for key in self._entries if key[0] == account]:
            self.held -= self._entries.pop(key)[2]


class DynamoJunkFilters:
    def __init__(self, client: DynamoDBClient, table: str,
                 cache: ModelCache | None = None) -> None:
        self._client = client
        self._table = table
        self.cache = cache if cache is not None else ModelCache()

    # -- filing ------------------------------------------------------------------------------
    def recipient_state(self, account: str, identities: Sequence[str]) -> RecipientFilterState:
        [state] = self.recipient_states([(account, identities)])
        return state

    def recipient_states(self, wanted: Sequence[tuple[str, Sequence[str]]]
                         ) -> list[RecipientFilterState]:
        keys: dict[tuple[str, str], Any] = {}  # each item once, however often it is wanted
        for account, identities in wanted:
            if len(set(identities)) > MAX_IDENTITIES:
                raise ValueError(f"at most {MAX_IDENTITIES} identities are read per account")
            for key in [junk_state_key(account)] + [
                    key for identity in identities
                    for key in (junk_sender_key(account, identity),
                                junk_wrote_key(account, identity))]:
                keys.setdefault((key["pk"]["S"], key["sk"]["S"]), key)
        items = {(item["pk"]["S"], item["sk"]["S"]): item
                 for item in self._batch_get(list(keys.values()),
                                             "reading the junk filter failed")}
        return [_state_of(account, identities, items) for account, identities in wanted]

    def model(self, account: str, version: int) -> JunkModel:
        if version == 0:
            return JunkModel.empty()
        cached = self.cache.get(account, version)
        if cached is not None:
            return cached
        item = self._get(junk_model_key(account), "reading the junk model failed")
        stored = _number(item, "version")
        if stored != version:
            raise Conflict(f"the junk model of {account} is at version {stored}, "
                           f"not {version}")
        encoded = bytes(item["model"]["B"])
        model = JunkModel.from_bytes(encoded)
        self.cache.put(account, version, model, encoded)
        return SharedModel(model, encoded)

    def record_written_to(self, account: str, identities: Sequence[str]) -> None:
        puts = [{"PutRequest": {"Item": {**junk_wrote_key(account, identity),
                                         "identity": {"S": identity}}}}
                for identity in dict.fromkeys(identities)]  # a batch may not name one twice
        try:
            for start in range(0, len(puts), BATCH_WRITE):
                pending: Any = {self._table: puts[start:start + BATCH_WRITE]}
                for attempt in range(ATTEMPTS):
                    answer = self._client.batch_write_item(RequestItems=pending)
                    pending = answer.get("UnprocessedItems") or {}
                    if not pending:
                        break
                    _back_off(attempt)
                else:
                    raise StorageUnavailable("recording whom the account wrote to failed")
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable("recording whom the account wrote to failed") from exc

    # -- settings --------------------------------------------------------------------------
    def settings(self, account: str) -> FilterSettings:
        return _settings(self._get(junk_state_key(account), "reading junk settings failed"))

    def save_settings(self, account: str, settings: FilterSettings) -> None:
        # SET only these: the model's version and counts in the same item stay as they are.
        try:
            self._client.update_item(
                TableName=self._table, Key=junk_state_key(account),
                UpdateExpression="SET allow_list = :allow, block_list = :block, "
                                 "junk_days = :days",
                ExpressionAttributeValues={":allow": _strings(settings.allow),
                                           ":block": _strings(settings.block),
                                           ":days": {"N": str(settings.junk_days)}})
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable("saving junk settings failed") from exc

    # -- learning --------------------------------------------------------------------------
    def lessons(self, account: str, keys: Sequence[str]) -> dict[str, LearnedLesson]:
        found = {}
        items = self._batch_get([junk_lesson_key(account, key) for key in dict.fromkeys(keys)],
                                "reading junk lessons failed")
        for item in items:
            key = item["sk"]["S"].removeprefix(LESSON_PREFIX)
            found[key] = LearnedLesson(
                lesson=Lesson(item["lesson"]["S"]),
                identities=tuple(str(value["S"]) for value in item["identities"]["L"]))
        return {key: found[key] for key in keys if key in found}

    def commit(self, account: str, base_version: int, model: JunkModel,
               lessons: Mapping[str, LearnedLesson | None],
               history: Mapping[str, HistoryChange]) -> int:
        version = base_version + 1
        encoded = model.to_bytes()
        condition = ("attribute_not_exists(version)" if base_version == 0
                     else "version = :base")
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self._table, "Item": {
                **junk_model_key(account), "version": {"N": str(version)},
                "model": {"B": encoded}}}},
            # An update, not a put: the settings in the same item stay.
            {"Update": {"TableName": self._table, "Key": junk_state_key(account),
                        "UpdateExpression": "SET version = :version, "
                                            "trained_junk = :junk, trained_not_junk = :not_junk",
                        "ConditionExpression": condition,
                        "ExpressionAttributeValues": {
                            ":version": {"N": str(version)},
                            ":junk": {"N": str(model.trained_junk)},
                            ":not_junk": {"N": str(model.trained_not_junk)},
                            **({":base": {"N": str(base_version)}} if base_version else {})}}},
        ]
        for key, lesson in lessons.items():
            if lesson is None:
                items.append({"Delete": {"TableName": self._table,
                                         "Key": junk_lesson_key(account, key)}})
            else:
                items.append({"Put": {"TableName": self._table, "Item": {
                    **junk_lesson_key(account, key), "lesson": {"S": str(lesson.lesson)},
                    "identities": _strings(lesson.identities)}}})
        for identity, change in history.items():
            if change.junk or change.not_junk:
                items.append({"Update": {
                    "TableName": self._table, "Key": junk_sender_key(account, identity),
                    "UpdateExpression": "ADD junk :junk, not_junk :not_junk",
                    "ExpressionAttributeValues": {":junk": {"N": str(change.junk)},
                                                  ":not_junk": {"N": str(change.not_junk)}}}})
        _within_one_transaction(items)
        self.cache.forget(account)
        try:
            self._client.transact_write_items(TransactItems=cast(Any, items))
        except ClientError as exc:
            error = exc.response.get("Error", {}).get("Code")
            reasons = [str(reason.get("Code") or "None")
                       for reason in exc.response.get("CancellationReasons", [])]
            if error == "TransactionCanceledException" and all(
                    code in {"None", "ConditionalCheckFailed", "TransactionConflict"}
                    for code in reasons):
                # Another learner committed first, or is committing now: read and redo.
                raise Conflict(f"the junk model of {account} moved on from version "
                               f"{base_version}") from exc
            raise StorageUnavailable("committing junk lessons failed") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("committing junk lessons failed") from exc
        return version

    # -- inside ----------------------------------------------------------------------------
    def _get(self, key: Any, failure: str) -> dict[str, Any]:
        try:
            return dict(self._client.get_item(TableName=self._table, Key=key,
                                              ConsistentRead=True).get("Item", {}))
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(failure) from exc

    def _batch_get(self, keys: list[Any], failure: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET):
            pending: Any = {self._table: {"Keys": keys[start:start + BATCH_GET],
                                          "ConsistentRead": True}}
            for attempt in range(ATTEMPTS):
                try:
                    answer = self._client.batch_get_item(RequestItems=pending)
                except (BotoCoreError, ClientError) as exc:
                    raise StorageUnavailable(failure) from exc
                found += answer.get("Responses", {}).get(self._table, [])
                pending = answer.get("UnprocessedKeys") or {}
                if not pending:
                    break
                _back_off(attempt)  # throttled: DynamoDB returns what it could not read
            else:
                raise StorageUnavailable(failure)
        return found


def _state_of(account: str, identities: Sequence[str],
              items: Mapping[tuple[str, str], Mapping[str, Any]]) -> RecipientFilterState:
    """The account's state from the items read (an item not found: nothing known)."""
    def item(key: Any) -> Mapping[str, Any] | None:
        return items.get((key["pk"]["S"], key["sk"]["S"]))

    state = item(junk_state_key(account)) or {}
    history = {}
    for identity in dict.fromkeys(identities):
        counts = item(junk_sender_key(account, identity))
        wrote = item(junk_wrote_key(account, identity)) is not None
        if counts is not None or wrote:
            history[identity] = SenderHistory(
                wrote_to=wrote, junk=_number(counts or {}, "junk"),
                not_junk=_number(counts or {}, "not_junk"))
    return RecipientFilterState(
        model_version=_number(state, "version"),
        trained_junk=_number(state, "trained_junk"),
        trained_not_junk=_number(state, "trained_not_junk"),
        settings=_settings(state), history=history)


def _within_one_transaction(items: list[dict[str, Any]]) -> None:
    size = sum(_size(item) for item in items)
    if len(items) > TRANSACTION_ITEMS or size > TRANSACTION_BYTES:
        raise ValueError(
            f"a junk filter commit is one transaction: at most {TRANSACTION_ITEMS} items "
            f"(the model, its state, one per lesson and per identity whose history "
            f"changes) and {TRANSACTION_BYTES} bytes; this one has {len(items)} items "
            f"and about {size} bytes: commit fewer lessons at a time")


def _size(value: Any) -> int:
    """About what DynamoDB counts of a request's item: its names and values' lengths."""
    if isinstance(value, dict):
        return sum(len(str(name)) + _size(each) for name, each in value.items())
    if isinstance(value, list):
        return sum(_size(each) + 1 for each in value)
    return len(value) if isinstance(value, str | bytes) else 8


def _settings(item: Mapping[str, Any]) -> FilterSettings:
    if "junk_days" not in item:
        return FilterSettings()
    return FilterSettings(allow=_list(item, "allow_list"), block=_list(item, "block_list"),
                          junk_days=_number(item, "junk_days"))


def _strings(values: Iterable[str]) -> Any:
    return {"L": [{"S": value} for value in values]}


def _list(item: Mapping[str, Any], name: str) -> tuple[str, ...]:
    return tuple(str(value["S"]) for value in item.get(name, {"L": []})["L"])


def _number(item: Mapping[str, Any], name: str) -> int:
    # Never below 0: a history's counts are added to and taken from in transactions.
    return max(0, int(item.get(name, {}).get("N", "0")))
