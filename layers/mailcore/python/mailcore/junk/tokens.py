"""The tokens a message is classified by: the words of its Subject (`s:word`), of its
text/plain parts and of the text of its text/html parts, each adjacent pair of words
("cheap pills"), and the hosts its links point at (`url:host`).

Parts, transfer encodings, charsets and encoded words are read by imap_view.search_text,
as SEARCH reads them. Everything is bounded and linear in what it reads: the first
MAX_SCANNED_BYTES of the message, MAX_TEXT characters of text in all, MAX_TOKENS distinct
tokens; HTML is taken apart by str.find (no regular expression with anything to backtrack
into, and html.parser's own has had quadratic inputs), words by one character class.
"""

from __future__ import annotations

import html
import re
import unicodedata
from itertools import pairwise

from mailcore.imap_view.search_text import Part, body_text, decode_words, parts, utf8_text

# Changing what tokens are made invalidates what a model learned: the learner re-derives
# tokens from the raw bytes when it unlearns, so a model is kept with the version it used.
TOKENIZER_VERSION = 1
MAX_SCANNED_BYTES = 2 * 1024 * 1024  # text after 2 MiB of attachments is not read
MAX_TEXT = 256 * 1024
MAX_TOKENS = 3000
MAX_SUBJECT = 1024
# Characters of NFKC-normalised text read at most (twice MAX_TEXT: ordinary text, even
# with ligatures, never reaches it), normalised this many at a time.
MAX_NORMALISED = 2 * MAX_TEXT
_NORMALISED_PIECE = 16 * 1024
MIN_WORD, MAX_WORD = 2, 30
# Numbers longer than this (order numbers, phone numbers, dates run together) are unique to
# one message and teach nothing; shorter ones (years, prices) can.
MAX_NUMBER = 4
MAX_HOST = 253
_WORD = re.compile(r"[^\W_]+")
_INVISIBLE = frozenset({"script", "style", "head", "title"})
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_HOST_END = frozenset("/?#:@\\\"'<>() \t\r\n")


class _Collector:
    def __init__(self) -> None:
        self.tokens: set[str] = set()
        self.text_left = MAX_TEXT

    @property
    def full(self) -> bool:
        return len(self.tokens) >= MAX_TOKENS

    def add(self, token: str) -> None:
        if len(self.tokens) < MAX_TOKENS:
            self.tokens.add(token)

    def take_text(self, text: str) -> str:
        text = text[:self.text_left]
        self.text_left -= len(text)
        return text

    def words(self, text: str, prefix: str = "") -> None:
        # NFKC a piece at a time and at most MAX_NORMALISED characters of it: one character
        # may become 18 (U+FDFA), so the whole text normalised at once is unbounded.
        found = _WORD.findall(_normalised(text, MAX_NORMALISED).casefold())
        if len(self.tokens) + 2 * len(found) > MAX_TOKENS:
            self._words_in_turn(found, prefix)  # the cap may be met midway: order counts
            return
        # Below the cap whatever comes, the same tokens in bulk: a word-by-word loop of
        # method calls was 1.1 of the 1.9 ms of CPU a 10 KiB message's tokens took (measured).
        kept = [word if MIN_WORD <= len(word) <= MAX_WORD
                and not (len(word) > MAX_NUMBER and word.isdigit()) else ""
                for word in found]
        self.tokens.update([prefix + word for word in kept if word])
        self.tokens.update([f"{prefix}{first} {second}"
                            for first, second in pairwise(kept) if first and second])

    def _words_in_turn(self, found: list[str], prefix: str) -> None:
        previous = ""
        for word in found:
            if self.full:
                return
            if not MIN_WORD <= len(word) <= MAX_WORD or (
                    len(word) > MAX_NUMBER and word.isdigit()):
                previous = ""
                continue
            self.add(prefix + word)
            if previous:
                self.add(f"{prefix}{previous} {word}")
            previous = word

    def links(self, text: str) -> None:
        lowered = text.casefold()
        for scheme in ("http://", "https://"):
            position = lowered.find(scheme)
            while position >= 0 and not self.full:
                start = position + len(scheme)
                end = start
                stop = min(len(lowered), start + MAX_HOST)
                while end < stop and lowered[end] not in _HOST_END:
                    end += 1
                host = lowered[start:end].strip(".")
                if host:
                    self.add("url:" + host)
                position = lowered.find(scheme, end)


def _normalised(text: str, limit: int) -> str:
    """NFKC of `text`, at most `limit` characters of it. NFKC makes up to 18 characters
    of one (U+FDFA): 256 KiB of those were 4.7 million characters, 0.8 s of CPU and 80 MB
    to read; so it is made a piece at a time (cut after a space, where nothing composes
    across) until the limit. Text that NFKC does not lengthen past it is read whole."""
    pieces: list[str] = []
    made = start = 0
    while start < len(text) and made < limit:
        end = min(len(text), start + _NORMALISED_PIECE)
        if end < len(text):
            space = text.rfind(" ", start, end)
            end = space + 1 if space > start else end
        piece = unicodedata.normalize("NFKC", text[start:end])
        pieces.append(piece)
        made += len(piece)
        start = end
    return "".join(pieces)[:limit]


def message_tokens(raw: bytes) -> frozenset[str]:
    """The message's tokens (this module's text says which); never raises on any bytes."""
    collector = _Collector()
    message_parts = parts(raw[:MAX_SCANNED_BYTES])
    head = next(message_parts, None)
    if head is None:
        return frozenset()
    subject = next((value for name, value in head.headers if name == b"subject"), b"")
    collector.words(decode_words(utf8_text(subject[:MAX_SUBJECT])), "s:")
    for part in (head, *message_parts):
        if collector.full or collector.text_left <= 0:
            break
        kind = _kind(part)
        if not part.text or kind not in (b"text/plain", b"text/html"):
            continue
        # Decoded text is at most as long as its encoding: no more is decoded than is read.
        sliced = Part(part.headers, part.body[:4 * collector.text_left], True)
        text = body_text(sliced)
        if kind == b"text/html":
            text, hrefs = html_text(text)
            collector.links(hrefs)
        text = collector.take_text(text)
        collector.links(text)
        collector.words(text)
    return frozenset(collector.tokens)


def _kind(part: Part) -> bytes:
    value = next((value for name, value in part.headers if name == b"content-type"),
                 b"text/plain")
    kind = value.partition(b";")[0].strip().lower()
    return kind if b"/" in kind else b"text/plain"


def html_text(document: str) -> tuple[str, str]:
    """(the text an HTML document shows, its tags' text for links): tags, comments and
    the content of script, style, head and title left out, entities unescaped."""
    lowered = document.translate(_ASCII_LOWER)  # same length: offsets stay the same
    shown: list[str] = []
    tags: list[str] = []
    position, length = 0, len(document)
    while position < length:
        opening = document.find("<", position)
        if opening < 0:
            shown.append(document[position:])
            break
        shown.append(document[position:opening])
        if lowered.startswith("<!--", opening):
            closing = lowered.find("-->", opening + 4)
            position = length if closing < 0 else closing + 3
            continue
        closing = document.find(">", opening + 1)
        if closing < 0:
            break  # an unclosed tag to the end: nothing shown
        tags.append(document[opening:closing + 1])
        name = _tag_name(lowered, opening + 1, closing)
        position = closing + 1
        if name in _INVISIBLE and document[closing - 1] != "/":
            end = lowered.find("</" + name, position)
            position = length if end < 0 else end
        shown.append(" ")  # a tag separates words ("<td>a</td><td>b</td>")
    return html.unescape("".join(shown)), html.unescape(" ".join(tags))


def _tag_name(lowered: str, start: int, end: int) -> str:
    """The name of the opening tag in lowered[start:end] ("" for a closing tag)."""
    stop = start
    while stop < min(end, start + 16) and lowered[stop].isalnum():
        stop += 1
    return lowered[start:stop]
