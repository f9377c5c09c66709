"""Probes of the issue-25 hardening as an attacker would run them, against the real
servers: each defect they found stays here as a test."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from edge.imap.config import ImapLimits
from tests.functional.test_imap_limits import LOGIN, Wire, _begin_append, _message
from tests.imap_support import RunningImap, running_imap


def _tls_wire(imap: RunningImap, receive_buffer: int | None = None) -> Wire:
    raw = socket.create_connection(("127.0.0.1", imap.imaps_port), timeout=10)
    if receive_buffer is not None:  # a client that reads little keeps little of it
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    wire = Wire(imap.client_tls().wrap_socket(raw))
    assert wire.line().startswith(b"* OK")
    return wire


def _with_a_large_message(imap: RunningImap) -> None:
    wire = _tls_wire(imap)
    assert wire.command(b"l", LOGIN).startswith(b"l OK")
    message = _message(3_000_000)
    assert _begin_append(wire, b"a", len(message)).startswith(b"+")
    wire.send(message + b"\r\n")
    assert wire.until(b"a")[-1].startswith(b"a OK")
    wire.command(b"o", b"LOGOUT")
    wire.close()


def _stops_reading(wire: Wire) -> None:
    wire.send(b"".join(b"f%d FETCH 1:* BODY[]\r\n" % n for n in range(5)))


def _reads_a_little_now_and_then(wire: Wire) -> None:
    wire.send(b"".join(b"f%d FETCH 1:* BODY[]\r\n" % n for n in range(5)))
    for _ in range(12):  # 2 KiB every half second: "active", never done
        with_data = wire.connection.recv(2048)
        if not with_data:
            return
        time.sleep(0.5)


@pytest.mark.parametrize("reader", [_stops_reading, _reads_a_little_now_and_then])
def test_a_client_that_does_not_read_its_answers_still_ends_at_the_sessions_limits(
        reader: Callable[[Wire], None]) -> None:
    # One account's sessions stuck writing a message each held their memory and their
    # account's session slots for ever: no deadline applied to a write.
    limits = ImapLimits(max_session_seconds=3, idle_seconds=2, per_account=1)
    with running_imap(limits=limits) as imap:
        _with_a_large_message(imap)
        wire = _tls_wire(imap, receive_buffer=4096)
        assert wire.command(b"l", LOGIN).startswith(b"l OK")
        assert wire.command(b"s", b"SELECT INBOX").startswith(b"s OK")
        reader(wire)
        answer = b""
        for _ in range(50):  # within the limits (3 s), and the server's own time to see it
            time.sleep(0.2)
            other = _tls_wire(imap)
            answer = other.command(b"l", LOGIN)
            other.close()
            if answer.startswith(b"l OK"):
                break
        assert answer.startswith(b"l OK"), answer


def _logged_in_as(imap: RunningImap, login: bytes) -> Wire:
    wire = _tls_wire(imap)
    assert wire.command(b"l", login).startswith(b"l OK")
    return wire


def test_one_account_that_never_sends_its_literals_cannot_hold_everyones_budget() -> None:
    # A literal announced and never sent holds its share of the budget for the idle time
    # (30 minutes): three of one account's sessions held all of it, and every other
    # account's APPEND got NO [LIMIT] meanwhile.
    limits = ImapLimits(append_limit=60_000, literal_budget=243_000)
    carol_login = b"LOGIN carol@hamburger.edu carol-password"
    with running_imap(limits=limits) as imap:
        holders = [_logged_in_as(imap, LOGIN) for _ in range(4)]
        answers = [_begin_append(holder, b"h", 50_000) for holder in holders]
        # One account holds at most what one command may (APPENDLIMIT and a line)...
        assert [answer[:1] for answer in answers] == [b"+", b"+", b"h", b"h"], answers
        assert answers[2].startswith(b"h NO [LIMIT]")
        # ... so another account still appends, a non-synchronizing literal too.
        carol = _logged_in_as(imap, carol_login)
        message = _message(50_000)
        assert _begin_append(carol, b"c", len(message)).startswith(b"+")
        carol.send(message + b"\r\n")
        assert carol.until(b"c")[-1].startswith(b"c OK [APPENDUID")
        carol.send(b"d APPEND INBOX {%d+}\r\n" % len(message) + message + b"\r\n")
        assert carol.until(b"d")[-1].startswith(b"d OK [APPENDUID")
        # When the holders finish or leave, the account's share is whole again.
        holders[0].send(_message(50_000) + b"\r\n")
        assert holders[0].until(b"h")[-1].startswith(b"h OK [APPENDUID")
        holders[1].close()
        answer = b""
        for attempt in range(50):  # the server sees the close in its own time
            answer = _begin_append(holders[2], b"a%d" % attempt, 50_000)
            if answer.startswith(b"+"):
                break
            time.sleep(0.1)
        assert answer.startswith(b"+"), answer


def _continuations_in_one_field(count: int) -> bytes:
    parameters = b"".join(b";\r\n name*%d*=a%%41" % n for n in range(count))
    return (b"From: alice@crepes.fr\r\nSubject: parameters\r\nContent-Type: text/plain"
            + parameters + b"\r\n\r\nbody\r\n")


def _plain_parameters_in_every_part(count: int) -> bytes:
    field = b"Content-Type: text/plain" + b"".join(b"; p%d=a" % n for n in range(1300))
    parts = b"".join(b"--b\r\n" + field + b"\r\n\r\npart\r\n" for _ in range(count))
    return (b"From: alice@crepes.fr\r\nSubject: parameters\r\n"
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n")


@pytest.mark.parametrize("message", [
    _continuations_in_one_field(20_000),
    _continuations_in_one_field(60_000),  # the header block's bound (1 MiB) and beyond
    _plain_parameters_in_every_part(400),
], ids=["rfc2231-20k", "rfc2231-60k", "plain-in-400-parts"])
def test_an_append_of_a_message_of_many_content_parameters_is_filed_at_once(
        message: bytes) -> None:
    # The email package reads a Content-Type field's parameters again at each question
    # (0.3 ms a parameter a read), and in the edge's threads no clock stops the parse: an
    # APPEND of 20,000 RFC 2231 continuations held a worker and the GIL for over 10 s.
    with running_imap() as imap:
        wire = _logged_in_as(imap, LOGIN)  # its socket gives up after 10 s
        wire.send(b"a APPEND INBOX {%d+}\r\n" % len(message) + message + b"\r\n")
        assert wire.until(b"a")[-1].startswith(b"a OK [APPENDUID")
        assert wire.command(b"s", b"SELECT INBOX").startswith(b"s OK")
        wire.send(b"f FETCH 1 (ENVELOPE BODYSTRUCTURE)\r\n")
        answer = wire.until(b"f")
        assert answer[-1].startswith(b"f OK"), answer[-1]
        assert b"parameters" in answer[0]


_TOO_LONG_PATTERN = b'LIST "" "' + b"x" * 900 + b'"'  # BAD [LIMIT]
_TOO_LONG_NAME = b'CREATE "' + b"a" * 300 + b'"'  # NO, raised as an error in pymap


@pytest.mark.parametrize("between", [_TOO_LONG_NAME, b"NOOP", b"SELECT nowhere"])
def test_refusals_between_bad_commands_keep_the_session(between: bytes) -> None:
    # pymap's count of BAD answers in a row was not reset by a NO raised as an error: a
    # client refused a folder name between two BADs was dropped at the fifth BAD.
    with running_imap() as imap:
        wire = _logged_in_as(imap, LOGIN)
        for _ in range(8):
            assert wire.command(b"b", _TOO_LONG_PATTERN).startswith(b"b BAD [LIMIT]")
            answer = wire.command(b"n", between)
            assert answer.startswith((b"n OK", b"n NO")), answer
        assert wire.command(b"z", b"NOOP").startswith(b"z OK")


@pytest.mark.parametrize("bad", [_TOO_LONG_PATTERN, b"FROB", b"FETCH x y"])
def test_five_bad_commands_in_a_row_end_the_session_with_bye(bad: bytes) -> None:
    # pymap added its BYE after writing the fifth BAD, so it never reached the client:
    # the connection just closed.
    with running_imap() as imap:
        wire = _logged_in_as(imap, LOGIN)
        for _ in range(4):
            assert wire.command(b"b", bad).startswith(b"b BAD")
        wire.send(b"b " + bad + b"\r\n")
        lines = wire.until(b"b")
        assert lines and lines[-1].startswith(b"b BAD"), lines
        assert wire.rest().startswith(b"* BYE [LIMIT]")


@pytest.mark.parametrize("criterion", [b"NOT BODY zq%d", b"OR SUBJECT zq%d TEXT x",
                                       b'HEADER X-Probe "zq%d"'])
def test_a_search_of_thousands_of_text_criteria_is_refused_and_the_session_goes_on(
        criterion: bytes) -> None:
    # Each criterion that reads text is one more pass over the folder's bytes: 4,000 of
    # them in one line held a storage thread for 4 s over 2.7 MB of mail.
    with running_imap() as imap:
        wire = _logged_in_as(imap, LOGIN)
        raw = _message(200)
        assert wire.command(b"a", b"APPEND INBOX {%d+}\r\n" % len(raw) + raw
                            ).startswith(b"a OK")
        assert wire.command(b"s", b"SELECT INBOX").startswith(b"s OK")
        many = b" ".join(criterion % n for n in range(1000))
        answer = wire.command(b"m", b"UID SEARCH " + many)
        assert answer.startswith(b"m BAD [LIMIT]"), answer
        # A search of as many as a client could want is answered.
        few = b" ".join(criterion % n for n in range(30))
        assert wire.command(b"f", b"UID SEARCH " + few).startswith(b"f OK")
        assert wire.command(b"n", b"NOOP").startswith(b"n OK")
