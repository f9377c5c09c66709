"""One account's content classifier: counts of tokens in the messages it taught as junk and
as not junk, combined the way Gary Robinson proposed for spam filters (each token's
probability pulled towards 0.5 by how rarely it was seen, then Fisher's chi-square
combination of the most telling ones; the method SpamBayes and mox's filter use).

Tokens are kept as 32-bit CRC-32 values, not as words: the model holds no text of the
account's mail, and an entry costs 12 bytes before compression. Two tokens sharing a value
(about 0.2 pairs expected among 50,000) only blur each other's counts.

The model is bounded: past MAX_TOKENS it drops the least useful tokens (seen least often,
then learned first) down to PRUNED_TOKENS, and its encoding is at most MAX_MODEL_BYTES, so
it fits one DynamoDB item (400 KB) with room for its key and counters.
"""

from __future__ import annotations

import math
import struct
import zlib
from array import array
from collections import Counter
from collections.abc import Collection, Iterable
from itertools import accumulate, chain, compress, islice, repeat
from operator import methodcaller, or_, sub

from mailcore.domain.junk import MIN_TRAINED_EACH, Lesson

MAX_MODEL_BYTES = 300_000
MAX_TOKENS = 50_000
# Pruning goes well below the cap, so that it runs once per some thousands of new tokens
# (a message brings up to a few hundred), not at nearly every message once the cap is met.
PRUNED_TOKENS = 40_000
# Robinson's strength of the background belief (s) and its value (x).
_STRENGTH = 1.0
_BACKGROUND = 0.5
# Only tokens at least this far from 0.5 count, at most this many of them (SpamBayes'
# defaults, which held up in its testing).
_MIN_DISTANCE = 0.1
_MAX_DISCRIMINATORS = 150
_MAGIC = b"MPJ1"
_LOW = 0xFFFFFFFF
_ONE_JUNK, _ONE_NOT_JUNK = 1 << 32, 1
_SEEN_ONCE = frozenset({_ONE_JUNK, _ONE_NOT_JUNK})
_HIGH_HALF = (32).__rrshift__  # packed >> 32, with no Python step
_SHIFTED = (32).__rlshift__  # junk << 32
_HEADER = struct.Struct("<4sIII")  # magic, trained junk, trained not junk, tokens


def token_hash(token: str) -> int:
    return zlib.crc32(token.encode("utf-8", "surrogatepass"))


_ENCODED = methodcaller("encode", "utf-8", "surrogatepass")


def token_hashes(tokens: Iterable[str]) -> set[int]:
    """token_hash of each token, with no Python step per token (a message has thousands).
    str.encode with no arguments is the same UTF-8 for every token with no lone surrogate,
    and half the CPU of calling it with the error handler (0.42 against 0.21 ms for a
    10 KiB message's 1,150 tokens, measured)."""
    listed = tokens if isinstance(tokens, (set, frozenset, list, tuple)) else list(tokens)
    try:
        return set(map(zlib.crc32, map(str.encode, listed)))
    except UnicodeEncodeError:  # a lone surrogate: only "surrogatepass" encodes it
        return set(map(zlib.crc32, map(_ENCODED, listed)))


def _chi2_survival(chi2: float, degrees: int) -> float:
    """P(X >= chi2) for a chi-square variable with an even number of degrees of freedom."""
    half = chi2 / 2.0
    term = math.exp(-half)
    total = term
    for index in range(1, degrees // 2):
        term *= half / index
        total += term
    return min(total, 1.0)


class JunkModel:
    """Token counts of one account; learn and unlearn are exact inverses (counts never go
    below zero: a token dropped by pruning and then unlearned stays gone).

    Each token's two counts are one int, junk << 32 | not junk: new tokens are added with
    no Python step and no allocation each, and ints are not tracked by the garbage
    collector (a [junk, not junk] list per token was: 50,000 of them). Learning a 10 KiB
    message (~2,000 tokens) took 3.5 ms of CPU with lists, 1.8 ms so (measured)."""

    def __init__(self, trained_junk: int = 0, trained_not_junk: int = 0,
                 counts: dict[int, int] | None = None) -> None:
        self.trained_junk = trained_junk
        self.trained_not_junk = trained_not_junk
        self._counts: dict[int, int] = counts if counts is not None else {}
        # Each packed count's (distance from 0.5, probability) when telling, else None, for
        # the trained totals it was worked out with: a model holds a few thousand distinct
        # packed counts, and a message looks up a thousand tokens (a 10 KiB message's
        # probability: 0.86 ms of CPU working each out, 0.68 ms looked up in C; measured,
        # best of 15, the gain with the encoding in token_hashes). At most
        # one entry per distinct packed count: 6,943 in the bench's 10,000-message model,
        # 486 KiB beside its counts' ~8 MB (tracemalloc).
        self._telling: dict[int, tuple[float, float] | None] = {}
        self._telling_for = (trained_junk, trained_not_junk)

    @classmethod
    def empty(cls) -> JunkModel:
        return cls()

    @property
    def token_count(self) -> int:
        return len(self._counts)

    @property
    def trained(self) -> bool:
        return min(self.trained_junk, self.trained_not_junk) >= MIN_TRAINED_EACH

    def learn(self, tokens: Iterable[str], lesson: Lesson) -> None:
        one = _ONE_JUNK if lesson is Lesson.JUNK else _ONE_NOT_JUNK
        counts = self._counts
        values = token_hashes(tokens)
        known = values & counts.keys()
        for value in known:
            counts[value] += one
        counts.update(zip(values - known, repeat(one), strict=False))
        if lesson is Lesson.JUNK:
            self.trained_junk += 1
        else:
            self.trained_not_junk += 1
        if len(counts) > MAX_TOKENS:
            self._prune(PRUNED_TOKENS)

    def unlearn(self, tokens: Iterable[str], lesson: Lesson) -> None:
        junk = lesson is Lesson.JUNK
        one = _ONE_JUNK if junk else _ONE_NOT_JUNK
        for value in token_hashes(tokens):
            packed = self._counts.get(value)
            if packed is None or not (packed >> 32 if junk else packed & _LOW):
                continue
            packed -= one
            if packed:
                self._counts[value] = packed
            else:
                del self._counts[value]
        if junk:
            self.trained_junk = max(0, self.trained_junk - 1)
        else:
            self.trained_not_junk = max(0, self.trained_not_junk - 1)

    def probability(self, tokens: Collection[str]) -> float | None:
        """The probability that a message with these tokens is junk, or None while the
        model has learned fewer than MIN_TRAINED_EACH messages of either kind."""
        if not self.trained:
            return None
        totals = (self.trained_junk, self.trained_not_junk)
        if self._telling_for != totals:
            self._telling, self._telling_for = {}, totals
        table = self._telling
        # A count is never 0 (a token unlearned to nothing is dropped): filter(None) keeps
        # the tokens the model knows.
        packed_values = list(filter(None, map(self._counts.get, token_hashes(tokens))))
        for packed in set(packed_values).difference(table):
            table[packed] = self._telling_of(packed, *totals)
        telling = list(filter(None, map(table.__getitem__, packed_values)))
        if not telling:
            return 0.5
        telling.sort(reverse=True)
        chosen = [pulled for _, pulled in telling[:_MAX_DISCRIMINATORS]]
        degrees = 2 * len(chosen)
        junkiness = 1.0 - _chi2_survival(-2.0 * sum(math.log(1.0 - p) for p in chosen), degrees)
        goodness = 1.0 - _chi2_survival(-2.0 * sum(math.log(p) for p in chosen), degrees)
        return (1.0 + junkiness - goodness) / 2.0

    @staticmethod
    def _telling_of(packed: int, junk_total: int,
                    not_junk_total: int) -> tuple[float, float] | None:
        """(distance from 0.5, probability) of a token with these counts, None when it
        is too close to 0.5 to tell."""
        junk, not_junk = packed >> 32, packed & _LOW
        junk_rate = junk / junk_total
        not_junk_rate = not_junk / not_junk_total
        seen = junk + not_junk
        raw = junk_rate / (junk_rate + not_junk_rate)
        pulled = (_STRENGTH * _BACKGROUND + seen * raw) / (_STRENGTH + seen)
        distance = abs(pulled - 0.5)
        return (distance, pulled) if distance >= _MIN_DISTANCE else None

    def _prune(self, keep: int) -> None:
        """Keeps `keep` tokens: those seen least often go first and, among those seen
        equally often, the ones learned first. (Telling apart tokens seen equally rarely by
        how telling they are gains nothing: a token seen once is as telling as any other
        seen once.) No sort, and no Python step per token kept: sorting 50,000 entries with
        a Python key at every overflow made 10,000 trained messages cost 36 s, measured."""
        drop = len(self._counts) - keep
        if drop <= 0:
            return
        # Most tokens are seen once (word pairs above all): the oldest of them are found
        # without reading further than they lie.
        seen_once = map(_SEEN_ONCE.__contains__, self._counts.values())
        doomed = list(islice(compress(self._counts, seen_once), drop))
        if len(doomed) < drop:
            doomed = self._least_seen(drop)
        for value in doomed:
            del self._counts[value]

    def _least_seen(self, drop: int) -> list[int]:
        totals = [(packed >> 32) + (packed & _LOW) for packed in self._counts.values()]
        by_seen = Counter(totals)
        threshold, below = 0, 0  # all seen fewer than threshold times ...
        for seen in sorted(by_seen):
            if below + by_seen[seen] >= drop:
                threshold = seen
                break
            below += by_seen[seen]
        doomed = list(compress(self._counts, map(threshold.__gt__, totals)))
        # ... and the first (drop - below) seen exactly that often
        doomed += islice(compress(self._counts, map(threshold.__eq__, totals)), drop - below)
        return doomed

    def to_bytes(self) -> bytes:
        """The model's encoding: a header, then the sorted token values as deltas and the
        two count columns, compressed; at most MAX_MODEL_BYTES (pruned further if needed)."""
        while True:
            encoded = self._encode()
            if len(encoded) <= MAX_MODEL_BYTES:
                return encoded
            self._prune(int(len(self._counts) * 0.9))

    def _encode(self) -> bytes:
        values = sorted(self._counts)
        packed = list(map(self._counts.__getitem__, values))
        deltas = array("I", map(sub, values, chain((0,), values)))
        junk = array("I", map(_HIGH_HALF, packed))
        not_junk = array("I", map(_LOW.__and__, packed))
        header = _HEADER.pack(_MAGIC, self.trained_junk, self.trained_not_junk, len(values))
        return header + zlib.compress(deltas.tobytes() + junk.tobytes() + not_junk.tobytes(), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> JunkModel:
        """Raises ValueError on bytes that are not a model."""
        if len(data) < _HEADER.size:
            raise ValueError("not a junk model")
        magic, trained_junk, trained_not_junk, size = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise ValueError("not a junk model")
        if size > MAX_TOKENS:
            raise ValueError("damaged junk model")
        expected = 12 * size
        inflater = zlib.decompressobj()
        try:
            # Bounded: a damaged body never inflates past what its header announces.
            body = inflater.decompress(data[_HEADER.size:], expected + 1)
        except zlib.error as exc:
            raise ValueError("damaged junk model") from exc
        if len(body) != expected or not inflater.eof or inflater.unused_data:
            raise ValueError("damaged junk model")
        columns = array("I")
        columns.frombytes(body)
        values = accumulate(columns[:size])
        packed = map(or_, map(_SHIFTED, columns[size:2 * size]), columns[2 * size:])
        counts = dict(zip(values, packed, strict=True))
        if len(counts) != size or not all(counts.values()):
            raise ValueError("damaged junk model")
        return cls(trained_junk, trained_not_junk, counts)
