"""What one IMAP connection may cost the edge, driven over raw sockets as an attacker would
write: literals before and after login (RFC 7888), commands pipelined after STARTTLS, and
sessions that would never end."""

from __future__ import annotations

import base64
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import pytest

from edge.imap.config import ImapLimits
from edge.smtp.protocol import SessionLimits
from tests.functional.test_imap import BOB, CAROL
from tests.imap_support import ACCOUNTS, RunningImap, running_imap

LOGIN = b"LOGIN bob@hamburger.edu bob-password"


class Wire:
    """One raw IMAP connection: bytes written as given, lines read as they come."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.pending = b""

    def send(self, data: bytes) -> None:
        self.connection.sendall(data)

    def send_until_closed(self, data: bytes) -> None:
        """As send, for more than the server may take: it may close before the end."""
        with suppress(BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
            self.connection.sendall(data)

    def line(self) -> bytes:
        while b"\n" not in self.pending:
            chunk = self.connection.recv(65536)
            if not chunk:
                raise EOFError(f"closed after {self.pending!r}")
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line + b"\n"

    def until(self, tag: bytes) -> list[bytes]:
        """The lines up to and with the tagged answer (or the connection's end)."""
        lines = []
        while True:
            try:
                line = self.line()
            except EOFError:
                return lines
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def command(self, tag: bytes, text: bytes) -> bytes:
        self.send(tag + b" " + text + b"\r\n")
        return self.until(tag)[-1]

    def rest(self) -> bytes:
        """Everything the server sends until it closes the connection."""
        received, self.pending = self.pending, b""
        try:
            while chunk := self.connection.recv(65536):
                received += chunk
        except (ConnectionResetError, ssl.SSLEOFError):
            pass
        return received

    def start_tls(self, context: ssl.SSLContext) -> None:
        assert not self.pending
        self.connection = context.wrap_socket(self.connection)

    def close(self) -> None:
        self.connection.close()


def _plain(imap: RunningImap) -> Wire:
    wire = Wire(socket.create_connection(("127.0.0.1", imap.imap_port), timeout=5))
    assert wire.line().startswith(b"* OK")
    return wire


def _after_starttls(imap: RunningImap) -> Wire:
    wire = _plain(imap)
    assert wire.command(b"s", b"STARTTLS").startswith(b"s OK")
    wire.start_tls(imap.client_tls())
    return wire


def _implicit_tls(imap: RunningImap) -> Wire:
    raw = socket.create_connection(("127.0.0.1", imap.imaps_port), timeout=5)
    wire = Wire(imap.client_tls().wrap_socket(raw))
    assert wire.line().startswith(b"* OK")
    return wire


def _logged_in(imap: RunningImap) -> Wire:
    wire = _implicit_tls(imap)
    assert wire.command(b"l", LOGIN).startswith(b"l OK")
    return wire


BEFORE_LOGIN: dict[str, Callable[[RunningImap], Wire]] = {
    "port 143 before STARTTLS": _plain,
    "port 143 after STARTTLS": _after_starttls,
    "port 993": _implicit_tls,
}


@pytest.fixture(params=list(BEFORE_LOGIN))
def before_login(request: pytest.FixtureRequest) -> Iterator[tuple[RunningImap, Wire]]:
    with running_imap() as imap:
        wire = BEFORE_LOGIN[request.param](imap)
        yield imap, wire
        wire.close()


# -- literals before login (RFC 7888) ---------------------------------------------------------

@pytest.mark.parametrize("line", [
    b"a LOGIN {25165824+}\r\n",
    b"a LOGIN bob@hamburger.edu {25165824+}\r\n",
    b"a LOGIN {5000+}\r\n",  # over the few KiB a login needs, far under APPENDLIMIT
    b"a ID ({5000000+}\r\n",
    b"a APPEND INBOX {25165824+}\r\n",
    b"a CAPABILITY {25165824+}\r\n",
])
def test_a_large_non_synchronizing_literal_before_login_ends_the_connection_unread(
        before_login: tuple[RunningImap, Wire], line: bytes) -> None:
    # GIVEN a connection that has not logged in, WHEN it announces a LITERAL+ that a login
    # never needs and sends none of its bytes, THEN the answer comes at once (the server
    # does not wait for them) and the connection is closed.
    _, wire = before_login
    wire.send(line)
    answer = wire.rest()
    assert b"a BAD [TOOBIG]" in answer
    assert b"* BYE [LIMIT]" in answer


@pytest.mark.parametrize("line", [
    b"a LOGIN {25165824}\r\n",
    b"a LOGIN bob@hamburger.edu {5000}\r\n",
    b"a ID ({5000000}\r\n",
    b"a APPEND INBOX {1000000}\r\n",
])
def test_a_large_synchronizing_literal_before_login_is_refused_and_the_session_goes_on(
        before_login: tuple[RunningImap, Wire], line: bytes) -> None:
    _, wire = before_login
    wire.send(line)
    answer = wire.line()
    assert answer.startswith(b"a BAD")  # no "+ go ahead": the client sends nothing
    assert wire.command(b"b", b"NOOP").startswith(b"b OK")


@pytest.mark.parametrize(("pieces", "refusal"), [
    # Each literal is small; together they are more than a command before login may hold.
    ([b'"k%d" {4000+}\r\n' % number + b"v" * 4000 + b" " for number in range(30)],
     b"a BAD [TOOBIG] Literal too large before login."),
    # Empty literals, each followed by a line as long as a line may be.
    ([b'"k%d" {0+}\r\n' % number + b" " * 60_000 for number in range(5)],
     b"* BYE [LIMIT] Command too large."),
], ids=["4 KiB literals", "long lines between empty literals"])
def test_many_small_literals_before_login_are_bounded_together(
        before_login: tuple[RunningImap, Wire], pieces: list[bytes], refusal: bytes) -> None:
    _, wire = before_login
    wire.send_until_closed(b"a ID (" + b"".join(pieces) + b'"end" "end")\r\n')
    answer = wire.rest()
    assert b"a OK" not in answer
    assert refusal in answer and b"* BYE [LIMIT]" in answer


def test_a_large_literal_in_an_authenticate_response_ends_the_connection_unread() -> None:
    with running_imap() as imap:
        for connect in (_after_starttls, _implicit_tls):
            wire = connect(imap)
            wire.send(b"a AUTHENTICATE PLAIN\r\n")
            assert wire.line().startswith(b"+")
            wire.send(b"{25165824+}\r\n")
            answer = wire.rest()
            assert b"a BAD [TOOBIG]" in answer and b"* BYE [LIMIT]" in answer


@pytest.mark.parametrize("connect", [_after_starttls, _implicit_tls])
def test_a_login_with_small_literals_still_works(
        connect: Callable[[RunningImap], Wire]) -> None:
    with running_imap() as imap:
        wire = connect(imap)
        wire.send(b"a LOGIN {17}\r\n")
        assert wire.line().startswith(b"+")
        wire.send(BOB.encode() + b" {12+}\r\n" + ACCOUNTS[BOB].encode() + b"\r\n")
        assert wire.until(b"a")[-1].startswith(b"a OK")


# -- literals after login: one budget for the whole process -----------------------------------

def _begin_append(wire: Wire, tag: bytes, size: int) -> bytes:
    wire.send(tag + b" APPEND INBOX {%d}\r\n" % size)
    return wire.line()


def _message(size: int) -> bytes:
    header = b"From: alice@crepes.fr\r\nSubject: budget\r\n\r\n"
    return header + b"x" * (size - len(header))


def test_appends_together_over_the_literal_budget_get_no_limit_and_small_ones_still_go() -> None:
    limits = ImapLimits(literal_budget=243_000)
    with running_imap(limits=limits) as imap:
        # GIVEN three sessions each sending an 80,000-byte APPEND (240,000 held, 3,000 left)
        holders = [_logged_in(imap) for _ in range(3)]
        for holder in holders:
            assert _begin_append(holder, b"h", 80_000).startswith(b"+")
        # WHEN a fourth wants as much, THEN it is refused before its bytes are sent
        late = _logged_in(imap)
        refused = _begin_append(late, b"r", 80_000)
        assert refused.startswith(b"r NO [LIMIT]")
        # ... and the session goes on: a small APPEND still fits
        small = _message(2_000)
        assert _begin_append(late, b"s", len(small)).startswith(b"+")
        late.send(small + b"\r\n")
        assert late.until(b"s")[-1].startswith(b"s OK [APPENDUID")
        # A literal other than APPEND's counts as well (pymap takes up to 4 KiB).
        late.send(b"t SEARCH TEXT {4000}\r\n")
        assert late.line().startswith(b"t NO [LIMIT]")
        # A LITERAL+ the budget cannot take ends its connection (its bytes come anyway).
        plus = _logged_in(imap)
        plus.send(b"p APPEND INBOX {80000+}\r\n")
        answer = plus.rest()
        assert b"* BYE [LIMIT]" in answer and b"p BAD [LIMIT]" in answer
        # WHEN the holders' commands are done, THEN what they held is free again.
        for holder in holders:
            holder.send(_message(80_000) + b"\r\n")
            assert holder.until(b"h")[-1].startswith(b"h OK [APPENDUID")
        assert _begin_append(late, b"u", 80_000).startswith(b"+")
        late.send(_message(80_000) + b"\r\n")
        assert late.until(b"u")[-1].startswith(b"u OK [APPENDUID")
        assert imap.storage.mailboxes.folder_named(BOB, "INBOX").total == 5


def test_a_client_that_leaves_mid_literal_gives_its_share_back() -> None:
    with running_imap(limits=ImapLimits(literal_budget=100_000)) as imap:
        leaver = _logged_in(imap)
        assert _begin_append(leaver, b"h", 80_000).startswith(b"+")
        leaver.send(b"x" * 1000)
        leaver.close()
        other = _logged_in(imap)
        for attempt in range(50):  # the server sees the close in its own time
            answer = _begin_append(other, b"a%d" % attempt, 80_000)
            if answer.startswith(b"+"):
                break
            assert b"NO [LIMIT]" in answer
            time.sleep(0.1)
        assert answer.startswith(b"+")


# -- literals after login: timed by their progress --------------------------------------------

# A literal starts with a second in hand and each byte buys 1/10,000 s more, never more than
# a second ahead: 80,000 bytes may take up to 9 s at a steady pace, a stall is cut in 1 s.
SLOW_LIMITS = {"literal_budget": 100_000, "min_literal_rate": 10_000,
               "literal_grace_seconds": 1.0}
CAROL_LOGIN = b"LOGIN %s %s" % (CAROL.encode(), ACCOUNTS[CAROL].encode())


def _trickle(wire: Wire, piece: bytes, every: float, seconds: float = 8.0) -> bytes:
    """Sends `piece` every `every` seconds, as long as the server says nothing, until it
    closes the connection: all it said. Fails if it takes `seconds` or more."""
    received = b""
    wire.connection.settimeout(every)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if not received:
                with suppress(OSError):  # closed meanwhile: what it said is still to read
                    wire.connection.sendall(piece)
            try:
                chunk = wire.connection.recv(65536)
            except TimeoutError:
                continue
            except (ConnectionResetError, ssl.SSLEOFError):
                return received
            if not chunk:
                return received
            received += chunk
    finally:
        wire.connection.settimeout(5)
    raise AssertionError(f"still connected after {seconds} s, having said {received!r}")


def _holds_the_budget(imap: RunningImap) -> Wire:
    """Carol's session, once Carol's APPEND of 80,000 bytes was refused for want of budget."""
    carol = _implicit_tls(imap)
    assert carol.command(b"l", CAROL_LOGIN).startswith(b"l OK")
    for attempt in range(20):  # a LITERAL+ is reserved once the server has read its line
        answer = _begin_append(carol, b"w%d" % attempt, 80_000)
        if answer.startswith(b"w%d NO [LIMIT]" % attempt):
            return carol
        assert answer.startswith(b"+")
        carol.send(_message(80_000) + b"\r\n")
        assert carol.until(b"w%d" % attempt)[-1].startswith(b"w%d OK" % attempt)
        time.sleep(0.05)
    raise AssertionError("the budget was never held")


def _budget_is_free_again(carol: Wire) -> None:
    """Carol's APPEND of 80,000 bytes is let in (within a few tries: the server releases
    the budget as the cut connection unwinds) and stored."""
    for attempt in range(50):
        answer = _begin_append(carol, b"a%d" % attempt, 80_000)
        if answer.startswith(b"+"):
            break
        assert b"NO [LIMIT]" in answer
        time.sleep(0.1)
    assert answer.startswith(b"+")
    carol.send(_message(80_000) + b"\r\n")
    assert carol.until(b"a%d" % attempt)[-1].startswith(b"a%d OK [APPENDUID" % attempt)


@pytest.mark.parametrize("announce", [b"APPEND INBOX {80000}", b"APPEND INBOX {80000+}",
                                      b"APPEND INBOX (\\Seen) {80000+}"],
                         ids=["synchronizing", "LITERAL+", "LITERAL+ with flags"])
@pytest.mark.parametrize(("piece", "every"), [(b"x" * 100, 0.1), (b"x", 0.5)],
                         ids=["1000 bytes a second", "a byte every half second"])
def test_a_trickling_literal_is_cut_off_and_its_budget_freed(announce: bytes, piece: bytes,
                                                             every: float) -> None:
    with _limited(**SLOW_LIMITS) as imap:
        bob = _logged_in(imap)
        bob.send(b"t " + announce + b"\r\n")
        if not announce.endswith(b"+}"):
            assert bob.line().startswith(b"+")
        carol = _holds_the_budget(imap)
        started = time.monotonic()
        said = _trickle(bob, b"From: bob\r\n\r\n" + piece, every)
        assert b"* BYE [LIMIT] Literal sent too slowly." in said
        assert time.monotonic() - started < 4  # 1 s in hand and a few ms bought
        _budget_is_free_again(carol)


@pytest.mark.parametrize("literal_plus", [False, True], ids=["synchronizing", "LITERAL+"])
def test_a_steady_literal_above_the_minimum_rate_finishes(literal_plus: bool) -> None:
    # 80,000 bytes at about 40,000 a second: 2 s, twice the second a literal starts with.
    with _limited(**SLOW_LIMITS) as imap:
        bob = _logged_in(imap)
        message = _message(80_000)
        if literal_plus:
            bob.send(b"a APPEND INBOX {80000+}\r\n")
        else:
            assert _begin_append(bob, b"a", 80_000).startswith(b"+")
        started = time.monotonic()
        for offset in range(0, len(message), 4_000):
            bob.send(message[offset:offset + 4_000])
            time.sleep(0.1)
        bob.send(b"\r\n")
        assert bob.until(b"a")[-1].startswith(b"a OK [APPENDUID")
        assert time.monotonic() - started > SLOW_LIMITS["literal_grace_seconds"]
        assert imap.storage.mailboxes.folder_named(BOB, "INBOX").total == 1


@pytest.mark.parametrize(("announce", "sent"), [
    (b"APPEND INBOX {80000}", 40_000),
    (b"APPEND INBOX {80000+}", 40_000),
    (b"APPEND INBOX {80000+}", 0),  # announced, then nothing
    (b"APPEND INBOX {80000}", 80_000),  # the whole literal, never the line's end
    # MULTIAPPEND (RFC 3502): the next message's announcement never finished
    (b"APPEND INBOX {80000}", 80_000 + len(b" {10")),
], ids=["synchronizing, half", "LITERAL+, half", "LITERAL+, none", "all but the CRLF",
        "between two literals"])
def test_a_literal_that_stalls_is_cut_off_and_its_budget_freed(announce: bytes,
                                                               sent: int) -> None:
    with _limited(**SLOW_LIMITS) as imap:
        bob = _logged_in(imap)
        bob.send(b"t " + announce + b"\r\n")
        if not announce.endswith(b"+}"):
            assert bob.line().startswith(b"+")
        carol = _holds_the_budget(imap)
        started = time.monotonic()
        bob.send((_message(80_000) + b" {10")[:sent])
        said = _trickle(bob, b"", 0.2)  # ... and nothing more
        assert b"* BYE [LIMIT] Literal sent too slowly." in said
        assert time.monotonic() - started < 5  # 1 s in hand, 8 s bought but not beyond 1 s
        _budget_is_free_again(carol)


def test_a_non_synchronizing_literal_over_appendlimit_is_told_toobig_and_closed() -> None:
    with running_imap(limits=ImapLimits(append_limit=1000)) as imap:
        wire = _logged_in(imap)
        wire.send(b"a APPEND INBOX {5000+}\r\n")
        answer = wire.rest()
        assert b"a BAD [TOOBIG]" in answer and b"* BYE [LIMIT]" in answer


# -- STARTTLS: nothing sent before the handshake is read after it -----------------------------

@pytest.mark.parametrize("pipelined", [
    b"b " + LOGIN + b"\r\n",
    b"b CAPABILITY\r\n",
    b"b LOGIN {17+}\r\nbob@hamburger.edu {12+}\r\nbob-password\r\n",
    b"b LOGIN {17}\r\n",
    b"b AUTHENTICATE PLAIN " + base64.b64encode(b"\0bob@hamburger.edu\0bob-password") + b"\r\n",
    b"b NOOP\r\nc " + LOGIN + b"\r\n",
])
def test_commands_pipelined_after_starttls_are_never_run_inside_tls(pipelined: bytes) -> None:
    # A man in the middle on port 143 appends its own commands to the client's STARTTLS:
    # they must not run in the session the client then secures.
    with running_imap() as imap:
        wire = _plain(imap)
        wire.send(b"a STARTTLS\r\n" + pipelined)
        assert wire.line().startswith(b"a OK")
        wire.start_tls(imap.client_tls())
        wire.send(b"z NOOP\r\n")
        answers = wire.until(b"z")
        assert answers[-1].startswith(b"z OK")
        assert not any(line.startswith((b"b ", b"c ", b"+")) for line in answers)
        # Still not logged in: the victim's own login is the one that counts.
        assert wire.command(b"y", b"SELECT INBOX").startswith(b"y BAD")
        carol = b"LOGIN %s %s" % (CAROL.encode(), ACCOUNTS[CAROL].encode())
        assert wire.command(b"x", carol).startswith(b"x OK")


# -- sessions end -----------------------------------------------------------------------------

@contextmanager
def _limited(**limits: float) -> Iterator[RunningImap]:
    with running_imap(limits=ImapLimits(**limits)) as imap:  # type: ignore[arg-type]
        yield imap


def _noop_until_bye(wire: Wire, tries: int = 100) -> bytes:
    """A NOOP every 0.1 s, as a squatter keeps a session up, until the server says BYE."""
    for number in range(tries):
        try:
            wire.send(b"n%d NOOP\r\n" % number)
            lines = b"".join(wire.until(b"n%d" % number))
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            lines = b""
        if not lines.endswith(b"OK NOOP completed.\r\n"):
            return lines + wire.rest()
        time.sleep(0.1)
    raise AssertionError("the session was never ended")


@pytest.mark.parametrize("connect", list(BEFORE_LOGIN.values()), ids=list(BEFORE_LOGIN))
def test_a_session_that_never_logs_in_ends_whatever_it_sends(
        connect: Callable[[RunningImap], Wire]) -> None:
    with _limited(max_unauthenticated_seconds=1.0) as imap:
        assert b"* BYE [LIMIT] Too long without logging in." in _noop_until_bye(connect(imap))


def test_a_session_that_never_logs_in_ends_even_mid_command() -> None:
    with _limited(max_unauthenticated_seconds=1.0) as imap:
        authenticating = _implicit_tls(imap)
        authenticating.send(b"a AUTHENTICATE PLAIN\r\n")
        assert authenticating.line().startswith(b"+")  # ... and never answers the challenge
        in_literal = _implicit_tls(imap)
        in_literal.send(b"a LOGIN {17}\r\n")
        assert in_literal.line().startswith(b"+")
        in_literal.send(b"bob@")  # ... and never the rest
        for wire in (authenticating, in_literal):
            assert b"* BYE [LIMIT] Too long without logging in." in wire.rest()


def test_a_logged_in_session_ends_at_its_age_however_busy() -> None:
    with _limited(max_session_seconds=1.5) as imap:
        assert b"* BYE [LIMIT] Session too old" in _noop_until_bye(_logged_in(imap))
        idling = _logged_in(imap)
        idling.command(b"s", b"SELECT INBOX")
        idling.send(b"i IDLE\r\n")
        assert idling.line().startswith(b"+")
        assert b"* BYE [LIMIT] Session too old" in idling.rest()


def test_a_client_that_reissues_idle_stays_connected_past_the_idle_time() -> None:
    # As a phone does: IDLE, and before the idle time is up, DONE and IDLE again.
    with _limited(idle_seconds=1.0, max_session_seconds=60) as imap:
        wire = _logged_in(imap)
        wire.command(b"s", b"SELECT INBOX")
        for number in range(6):
            wire.send(b"i%d IDLE\r\n" % number)
            assert wire.line().startswith(b"+")
            time.sleep(0.6)
            wire.send(b"DONE\r\n")
            assert wire.until(b"i%d" % number)[-1].startswith(b"i%d OK" % number)
        assert wire.command(b"n", b"NOOP").startswith(b"n OK")


@pytest.mark.parametrize(("connect", "commands_before"), [(_plain, 0), (_logged_in, 1)])
def test_commands_per_session_are_capped(connect: Callable[[RunningImap], Wire],
                                         commands_before: int) -> None:
    with _limited(max_commands=20) as imap:
        wire = connect(imap)
        wire.send(b"".join(b"n%d NOOP\r\n" % number for number in range(40)))
        answer = wire.rest()
        assert answer.count(b"OK NOOP completed.") == 20 - commands_before
        assert answer.endswith(b"* BYE [LIMIT] Too many commands in one session, "
                               b"please reconnect.\r\n")


def test_the_limits_come_from_the_edges_environment() -> None:
    limits = ImapLimits.from_environ({
        "MAILPIPE_IMAP_LITERAL_BUDGET": "1000000",
        "MAILPIPE_IMAP_MAX_UNAUTHENTICATED_SECONDS": "30",
        "MAILPIPE_IMAP_MAX_SESSION_SECONDS": "7200",
        "MAILPIPE_IMAP_MAX_COMMANDS": "500",
        "MAILPIPE_IMAP_MIN_LITERAL_RATE": "2000",
    }, append_limit=123)
    assert (limits.literal_budget, limits.max_unauthenticated_seconds,
            limits.max_session_seconds, limits.max_commands, limits.append_limit,
            limits.min_literal_rate) == (1_000_000, 30.0, 7200.0, 500, 123, 2000.0)
    assert ImapLimits.from_environ({}, append_limit=123) == ImapLimits(append_limit=123)
    defaults = ImapLimits()
    # An IDLE client re-issues IDLE every 29 minutes (RFC 2177): many times in a session;
    # two messages of the largest size can be appended at once.
    assert defaults.max_session_seconds >= 12 * 3600 > defaults.idle_seconds
    assert defaults.literal_budget >= 2 * defaults.append_limit
    # A literal is timed as SMTP's DATA is (MAILPIPE_MIN_DATA_RATE).
    assert defaults.min_literal_rate == SessionLimits().min_data_rate
