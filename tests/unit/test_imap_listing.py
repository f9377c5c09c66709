"""LIST patterns matched by edge/imap/listing.py's automaton agree with pymap's regular
expressions (the reference: what LIST answered before) on every small name and pattern."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pymap.listtree import ListTree

from edge.imap.listing import MAX_PATTERN, FolderTree, MailboxPattern, pattern_problem

NAMES = st.text(alphabet="abAB/.é", max_size=10)
PATTERNS = st.text(alphabet="abAB/.é*%", max_size=8)


def _reference(pattern: str, name: str) -> bool:
    regex = ListTree("/")._get_pattern(pattern)[0]
    return regex.match(name) is not None


@settings(max_examples=2000, deadline=None)
@given(pattern=PATTERNS, name=NAMES)
def test_a_pattern_matches_a_name_as_pymaps_regex_does(pattern: str, name: str) -> None:
    assert MailboxPattern(pattern, "/").matches(name) is _reference(pattern, name)


@settings(max_examples=300, deadline=None)
@given(names=st.lists(st.text(alphabet="aInNbBoOxX/", min_size=1, max_size=7).filter(
    lambda name: "//" not in name and not name.startswith("/") and not name.endswith("/")),
    max_size=6), reference=st.sampled_from(["", "i", "I", "a/", "In"]),
    pattern=st.text(alphabet="inbox/INBOX*%a", max_size=6))
def test_a_tree_lists_what_pymaps_tree_listed(names: list[str], reference: str,
                                              pattern: str) -> None:
    """INBOX in any letter case (pymap's case-insensitive regex, on ASCII names)."""
    before = ListTree("/").update("INBOX", *names)
    after = FolderTree("/").update("INBOX", *names)
    assert isinstance(after, FolderTree)
    assert [entry.name for entry in after.list_matching(reference, pattern)] == [
        entry.name for entry in before.list_matching(reference, pattern)]


def test_wildcards_cost_nothing_more_than_characters() -> None:
    """The pattern that took pymap 14 s, and worse, over the longest folder name: each
    is answered (whatever the time, which bench/imap_mx_latency.py measures)."""
    name = "a" * 200
    for pattern in ("*a*a*a*a*b", "*a" * 30 + "b", "%a" * 30 + "b", "*a%" * 20 + "b"):
        assert not MailboxPattern(pattern, "/").matches(name)
        assert MailboxPattern(pattern[:-1], "/").matches(name)  # without its "b"


def test_absurd_patterns_are_refused() -> None:
    assert pattern_problem("", "*" * 64) is None
    assert pattern_problem("", "%" * 65) is not None
    assert pattern_problem("Archive/", "a" * (MAX_PATTERN - 8)) is None
    assert pattern_problem("Archive/", "a" * (MAX_PATTERN - 7)) is not None
