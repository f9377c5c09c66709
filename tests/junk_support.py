"""Junk-like and ham-like messages made from two vocabularies, and an account's filter
trained on them (issue 29's tests and bench/junk_filing.py)."""

from __future__ import annotations

import random

from mailcore.domain.junk import Lesson
from mailcore.junk.model import JunkModel
from mailcore.junk.tokens import message_tokens
from mailcore.ports.junk import JunkFilterStore

JUNK_WORDS = ("casino", "jackpot", "winner", "lottery", "bitcoin", "cheap", "pills", "prize",
              "urgent", "claim", "million", "investment", "guaranteed", "discount", "viagra",
              "unsubscribe", "exclusive", "bonus", "refinance", "inheritance", "wire",
              "beneficiary", "crypto", "rolex", "replica", "pharmacy", "loan", "credit")
HAM_WORDS = ("meeting", "agenda", "project", "review", "lunch", "schedule", "report", "draft",
             "minutes", "quarterly", "team", "notes", "budget", "deadline", "slides",
             "tomorrow", "thanks", "attached", "kids", "dinner", "weekend", "holiday",
             "garden", "football", "recipe", "birthday", "train", "library")
COMMON_WORDS = ("the", "and", "you", "for", "with", "this", "that", "your", "have", "from")


def message(seed: int, junk: bool, sender: str = "someone@example.net",
            to: str = "bob@hamburger.edu", extra: bytes = b"") -> bytes:
    """A plain text message in one vocabulary (with common words), different per seed."""
    rng = random.Random(seed * 2 + junk)
    words = JUNK_WORDS if junk else HAM_WORDS
    subject = " ".join(rng.choice(words) for _ in range(4))
    body = " ".join(rng.choice(words) if rng.random() < 0.6 else rng.choice(COMMON_WORDS)
                    for _ in range(80))
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{seed}.{int(junk)}@example.net>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{body}\r\n").encode() + extra


def trained_model(each: int, first_seed: int = 1000) -> JunkModel:
    model = JunkModel.empty()
    for seed in range(first_seed, first_seed + each):
        model.learn(message_tokens(message(seed, True)), Lesson.JUNK)
        model.learn(message_tokens(message(seed, False)), Lesson.NOT_JUNK)
    return model


def train(filters: JunkFilterStore, account: str, each: int = 25) -> int:
    """The account's filter taught `each` junk-like and `each` ham-like messages, as the
    learner commits them: the new model version."""
    version = filters.recipient_state(account, ()).model_version
    return filters.commit(account, version, trained_model(each), {}, {})
