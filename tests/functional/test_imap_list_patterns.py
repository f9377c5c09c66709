"""LIST, LSUB and LIST (SPECIAL-USE) with patterns built to make a backtracking matcher
take hours: each is answered, a second client is answered meanwhile (the event loop is
never held), an absurd pattern is refused with the session alive, and ordinary patterns
list what they listed before (pymap's own matcher on the same names is the reference)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from pymap.listtree import ListTree

from tests.imap_support import ACCOUNTS, RunningImap, running_imap
from tests.raw_imap import Answer, RawImap

BOB = "bob@hamburger.edu"
LONG = "a" * 200  # the longest folder name
FOLDERS = [LONG, "a" * 199 + "b", "Archive/2025", "Archive/2026", "Archive/2026/Q1",
           "Projects", "Projects/mailpipe", "Caf\u00e9"]
HOSTILE = [
    b'LIST "" "*a*a*a*a*a*a*a*a*b"',
    b'LIST "" "%a%a%a%a%a%a%a%a%b"',
    b'LIST "" "*a%a*a%a*a%a*a%a*b"',
    b'LIST "*a*a*a*a*a" "*a*a*a*a*b"',  # the reference is part of the pattern
    b'LSUB "" "*a*a*a*a*a*a*a*a*b"',
    b'LIST (SPECIAL-USE) "" "*a*a*a*a*a*a*a*a*b"',
    b'LIST "" ' + b"*a" * 60 + b"b",  # 60 wildcards, an atom
]


@pytest.fixture(scope="module")
def imap() -> Iterator[RunningImap]:
    with running_imap() as running:
        client = _client(running)
        for name in FOLDERS:
            answer = client.command(b'CREATE "%s"' % name.encode("utf-7").replace(b"+", b"&"))
            assert answer.status == b"OK", answer
        client.close()
        yield running


def _client(imap: RunningImap) -> RawImap:
    client = RawImap.connect(imap.imaps_port, imap.client_tls())
    client.login(BOB, ACCOUNTS[BOB])
    return client


def _listed(answer: Answer) -> list[str]:
    assert answer.status == b"OK", answer
    names = []
    for line in answer.untagged:
        assert line.startswith((b"* LIST ", b"* LSUB ")), line
        name = line.rstrip(b"\r\n").rsplit(b" ", 1)[1]
        names.append(name.strip(b'"').decode())
    return names


@pytest.mark.parametrize("command", HOSTILE)
def test_a_hostile_pattern_is_answered_while_another_client_is(imap: RunningImap,
                                                               command: bytes) -> None:
    lister, other = _client(imap), _client(imap)
    answered: list[Answer] = []
    listing = threading.Thread(target=lambda: answered.append(lister.command(command)))
    listing.start()
    # The other session is answered whatever the LIST is doing (a held event loop would
    # leave it waiting for as long as the matching takes: hours, before).
    assert other.command(b"NOOP").status == b"OK"
    listing.join(timeout=30)
    assert not listing.is_alive(), "LIST not answered within 30 s"
    names = _listed(answered[0])
    assert LONG not in names
    if command.endswith(b'*b"') or command.endswith(b"b"):
        expected = {"a" * 199 + "b"} if b"SPECIAL-USE" not in command else set()
        assert set(names) == expected
    assert lister.command(b"NOOP").status == b"OK"


@pytest.mark.parametrize("command", [
    b'LIST "" "' + b"a" * 801 + b'"',
    b'LIST "' + b"a" * 400 + b'" "' + b"%" * 401 + b'"',
    b'LIST "" "' + b"*" * 65 + b'"',
    b'LSUB "" "' + b"%a" * 65 + b'"',
    b'LIST (SPECIAL-USE) "" "' + b"*" * 100 + b'"',
])
def test_an_absurd_pattern_is_refused_and_the_session_goes_on(imap: RunningImap,
                                                               command: bytes) -> None:
    client = _client(imap)
    answer = client.command(command)
    assert answer.status == b"BAD" and b"[LIMIT]" in answer.tagged, answer
    assert _listed(client.command(b'LIST "" "%"'))


@pytest.mark.parametrize(("reference", "pattern"), [
    ("", "*"), ("", "%"), ("", "Archive/%"), ("Archive/", "%"), ("", "Archive/*"),
    ("", "inbox"), ("", "InBoX"), ("", "%/%"), ("", "*/Q1"), ("", "Proj*"), ("", "Caf%"),
    ("", "*e*"), ("Projects", "/%"), ("", "Sent"), ("", "nothing*"),
])
def test_ordinary_patterns_list_what_they_listed_before(imap: RunningImap, reference: str,
                                                        pattern: str) -> None:
    client = _client(imap)
    everything = _listed(client.command(b'LIST "" "*"'))
    decoded = [name.replace("&AOk-", "\u00e9") for name in everything]
    before = ListTree("/").update(*decoded)
    expected = [entry.name for entry in before.list_matching(reference, pattern)]
    answer = client.command(b'LIST "%s" "%s"' % (reference.encode(), pattern.encode()))
    assert [name.replace("&AOk-", "\u00e9") for name in _listed(answer)] == expected
    lsub = client.command(b'LSUB "%s" "%s"' % (reference.encode(), pattern.encode()))
    assert [name.replace("&AOk-", "\u00e9") for name in _listed(lsub)] == expected
