"""The edge under hostile input: memory, time and identity stay bounded and true.

Each attack is tried in several variants on the wire, against a real edge on 127.0.0.1.
"""

from __future__ import annotations

import threading
import time

import pytest

from edge.smtp.protocol import SessionLimits
from mailcore.adapters.memory.store import InMemoryMessageStore
from tests.edge_support import Wire, proxy_v2_header, running_edge

HEAD = b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: hi\r\n\r\n"
MiB = 1024 * 1024


def _transaction(port: int, helo: bytes = b"EHLO crepes.fr") -> Wire:
    wire = Wire(port)
    assert wire.reply()[0].startswith(b"220")
    wire.command(helo)
    assert wire.command(b"MAIL FROM:<alice@crepes.fr>")[-1].startswith(b"250")
    assert wire.command(b"RCPT TO:<bob@hamburger.edu>")[-1].startswith(b"250")
    return wire


def _rss_peak_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))


# ---- DATA: long lines, dots, pipelining ----------------------------------------------------
@pytest.mark.parametrize("length", [999, 1001, 5000, 64 * 1024 - 2])
def test_long_lines_up_to_64_kib_are_accepted_and_stored_as_they_came(length):
    store = InMemoryMessageStore()
    body = HEAD + b"y" * length + b"\r\nend\r\n"
    with running_edge(store) as edge:
        wire = _transaction(edge.mx_port)
        assert wire.command(b"DATA")[0].startswith(b"354")
        wire.send(body + b".\r\n")
        assert wire.reply()[-1].startswith(b"250")
    [key] = store.message_keys()
    assert store.get_raw(key).endswith(body)


@pytest.mark.parametrize("length", [64 * 1024 + 1, 300_000])
def test_a_line_over_64_kib_is_refused_after_the_data_and_the_session_goes_on(length):
    store = InMemoryMessageStore()
    with running_edge(store) as edge:
        wire = _transaction(edge.mx_port)
        wire.command(b"DATA")
        wire.send(HEAD + b"z" * length + b"\r\n.\r\n")
        assert wire.reply()[-1].startswith(b"500 5.5.2")
        assert wire.command(b"NOOP")[-1].startswith(b"250")
    assert store.message_keys() == []


@pytest.mark.parametrize("body", [
    b"", b"\r\n", b"..\r\n", b".hidden\r\n..\r\n...dots\r\n", b"x\r\n..\r\n",
    b"a\r\n" * 50_000 + b"..last\r\n",
])
def test_end_of_data_and_dot_stuffing_on_every_boundary(body):
    """RFC 5321 §4.5.2: the lone dot ends the data; one leading dot is removed per line;
    what is pipelined after the end is the next command, never part of the message."""
    store = InMemoryMessageStore()
    with running_edge(store) as edge:
        wire = _transaction(edge.mx_port)
        wire.command(b"DATA")
        # The whole message and the next command in one write.
        wire.send(HEAD + body + b".\r\nNOOP\r\n")
        assert wire.reply()[-1].startswith(b"250 2.0.0")
        assert wire.reply()[-1].startswith(b"250")  # the NOOP
    [key] = store.message_keys()
    unstuffed = b"\r\n".join(line[1:] if line.startswith(b".") else line
                             for line in body.split(b"\r\n"))
    assert store.get_raw(key).endswith(HEAD + unstuffed)


def test_end_of_data_split_across_every_write_boundary():
    store = InMemoryMessageStore()
    ending = b"last line\r\n.\r\n"
    with running_edge(store) as edge:
        for cut in range(1, len(ending)):
            wire = _transaction(edge.mx_port)
            wire.command(b"DATA")
            wire.send(HEAD + ending[:cut])
            time.sleep(0.02)
            wire.send(ending[cut:] + b"QUIT\r\n")
            assert wire.reply()[-1].startswith(b"250 2.0.0"), cut
            assert wire.reply()[-1].startswith(b"221"), cut
    assert len(store.message_keys()) == len(ending) - 1
    assert all(store.get_raw(key).endswith(HEAD + b"last line\r\n")
               for key in store.message_keys())


# ---- memory ----------------------------------------------------------------------------------
def test_data_beyond_the_process_budget_gets_452_4_3_1_and_the_budget_comes_back():
    store = InMemoryMessageStore()
    with running_edge(store, data_memory_budget=2 * MiB) as edge:
        # A message larger than the whole budget: read to its end, then refused.
        wire = _transaction(edge.mx_port)
        wire.command(b"DATA")
        wire.send(HEAD + (b"x" * 998 + b"\r\n") * 3000 + b".\r\n")
        assert wire.reply()[-1].startswith(b"452 4.3.1")

        # One session holds most of the budget mid-DATA; new DATA elsewhere is refused.
        holder = _transaction(edge.mx_port)
        holder.command(b"DATA")
        holder.send(HEAD + (b"x" * 998 + b"\r\n") * 1500)
        deadline = time.monotonic() + 10
        while edge.edge.budget.in_use < 1.5 * MiB and time.monotonic() < deadline:
            time.sleep(0.01)
        other = _transaction(edge.mx_port)
        assert other.command(b"DATA")[-1].startswith(b"452 4.3.1")

        holder.send(b".\r\n")
        assert holder.reply()[-1].startswith(b"250")
        assert other.command(b"DATA")[0].startswith(b"354")  # the budget came back
        other.send(HEAD + b"small\r\n.\r\n")
        assert other.reply()[-1].startswith(b"250")
    assert edge.edge.budget.in_use == 0
    assert len(store.message_keys()) == 2


def test_blank_line_floods_from_several_connections_stay_in_memory_and_the_edge_answers():
    """Before: ~67 bytes of heap per 2-byte empty line, so these 4 x 12 MiB would cost
    about 1.6 GiB. Now a flood costs about its own size, and other clients are served."""
    flood = b"\r\n" * (6 * MiB)
    before = _rss_peak_kib()
    with running_edge(InMemoryMessageStore()) as edge:
        replies: list[bytes] = []

        def flood_once() -> None:
            wire = _transaction(edge.mx_port)
            wire.command(b"DATA")
            for _ in range(2):
                wire.send(flood)
            wire.send(b".\r\n")
            replies.append(wire.reply()[-1])

        threads = [threading.Thread(target=flood_once) for _ in range(4)]
        for thread in threads:
            thread.start()
        # While the floods arrive, a new client is greeted and served.
        started = time.monotonic()
        wire = _transaction(edge.mx_port)
        assert wire.command(b"NOOP")[-1].startswith(b"250")
        assert time.monotonic() - started < 5
        for thread in threads:
            thread.join(120)
    assert [reply[:3] for reply in replies] == [b"250"] * 4
    # Four 12 MiB messages were stored in memory by the test's store (48 MiB); the rest
    # is what the edge held on the way. The peak is the whole test process's: alone this
    # test stays under 4x the floods, but beside the 10,000-message load test on the other
    # worker one clean-clone run measured 200 MiB (4.2x). Six times still fails the
    # per-line objects this guards against (about 1.6 GiB).
    assert (_rss_peak_kib() - before) / 1024 < 4 * 12 * 6


# ---- time ------------------------------------------------------------------------------------
def test_slow_but_steady_data_outlives_the_command_timeout():
    store = InMemoryMessageStore()
    limits = SessionLimits(min_data_rate=1000)
    with running_edge(store, command_timeout=1.5, limits=limits) as edge:
        wire = _transaction(edge.mx_port)
        wire.command(b"DATA")
        wire.send(HEAD)
        for _ in range(6):  # 3 s in all, at ~2,000 bytes a second
            time.sleep(0.5)
            wire.send(b"x" * 998 + b"\r\n")
        wire.send(b".\r\n")
        assert wire.reply()[-1].startswith(b"250")
    assert len(store.message_keys()) == 1


def test_a_trickle_of_data_is_cut_off_with_421_4_4_2():
    limits = SessionLimits(min_data_rate=1000)
    with running_edge(command_timeout=1.5, limits=limits) as edge:
        wire = _transaction(edge.mx_port)
        wire.command(b"DATA")
        started = time.monotonic()
        with pytest.raises((ConnectionError, OSError)):
            for _ in range(40):  # a byte every 0.2 s buys 1 ms each
                wire.send(b"x")
                time.sleep(0.2)
        assert time.monotonic() - started < 6
        assert wire.reply()[0].startswith(b"421 4.4.2")


def test_noop_forever_is_ended_by_the_session_age_limit():
    limits = SessionLimits(max_session_seconds=1.5)
    with running_edge(limits=limits) as edge:
        wire = Wire(edge.mx_port)
        wire.reply()
        started = time.monotonic()
        closing = None
        while time.monotonic() - started < 10:
            reply = wire.command(b"NOOP")[-1]
            if not reply.startswith(b"250"):
                closing = reply
                break
            time.sleep(0.2)
        assert closing is not None and closing.startswith(b"421 4.4.2")


def test_a_message_in_flight_finishes_before_the_age_limit_closes_the_session():
    store = InMemoryMessageStore()
    with running_edge(store, limits=SessionLimits(max_session_seconds=1)) as edge:
        wire = _transaction(edge.mx_port)
        wire.command(b"DATA")
        wire.send(HEAD)
        time.sleep(1.5)  # the age limit passes mid-DATA
        wire.send(b"body\r\n.\r\n")
        assert wire.reply()[-1].startswith(b"250")
        assert wire.reply()[-1].startswith(b"421 4.4.2")
    assert len(store.message_keys()) == 1


def test_commands_beyond_the_per_session_count_close_it():
    with running_edge(max_commands=5) as edge:
        wire = Wire(edge.mx_port)
        wire.reply()
        for _ in range(5):
            assert wire.command(b"NOOP")[-1].startswith(b"250")
        assert wire.command(b"NOOP")[-1].startswith(b"421 4.7.0")


# ---- the real client behind the load balancer ------------------------------------------
def _behind_proxy(edge, source: str, port: int) -> Wire:
    wire = Wire(port)
    wire.send(proxy_v2_header(source, 40000))
    assert wire.reply()[0].startswith(b"220")
    wire.command(b"EHLO laptop.example")
    assert wire.command(b"STARTTLS")[0].startswith(b"220")
    wire.start_tls(edge.client_tls())
    wire.command(b"EHLO laptop.example")
    return wire


def _auth_plain(wire: Wire, login: str, password: str) -> bytes:
    import base64

    token = base64.b64encode(f"\0{login}\0{password}".encode())
    return wire.command(b"AUTH PLAIN " + token)[-1]


def test_proxy_client_survives_starttls_so_one_guesser_locks_out_only_itself():
    store = InMemoryMessageStore()
    with running_edge(store, proxy_protocol=True) as edge:
        guesser = _behind_proxy(edge, "203.0.113.7", edge.submission_port)
        for number in range(10):  # the per-client limit, with a new login each time
            assert _auth_plain(guesser, f"user{number}@hamburger.edu", "guess")[:3] == b"535"
        assert _auth_plain(guesser, "carol@hamburger.edu",
                           "carol-password").startswith(b"454 4.7.0")

        # Same load balancer, another client: not locked out.
        bob = _behind_proxy(edge, "198.51.100.9", edge.submission_port)
        assert _auth_plain(bob, "bob@hamburger.edu", "bob-password").startswith(b"235")
        bob.command(b"MAIL FROM:<bob@hamburger.edu>")
        bob.command(b"RCPT TO:<zoe@elsewhere.test>")
        bob.command(b"DATA")
        bob.send(b"From: bob@hamburger.edu\r\nSubject: hi\r\n\r\nhello\r\n.\r\n")
        assert bob.reply()[-1].startswith(b"250")
    [key] = store.message_keys()
    assert store.get_envelope(key).peer == "198.51.100.9"
    [received] = [line for line in store.get_raw(key).split(b"\r\n")
                  if line.startswith(b"Received: ")]
    assert b"(198.51.100.9)" in received


def test_proxy_header_from_an_untrusted_peer_is_refused():
    from ipaddress import ip_network

    store = InMemoryMessageStore()
    with running_edge(store, proxy_protocol=True,
                      proxy_trusted=(ip_network("10.0.0.0/8"),)) as edge:
        # Version 1, as a command line: refused and closed.
        wire = Wire(edge.mx_port)
        assert wire.reply()[0].startswith(b"220")  # greeted at once: no header awaited
        assert wire.command(b"PROXY TCP4 192.0.2.66 127.0.0.1 40000 25")[0].startswith(
            b"554 5.7.0")
        # Version 2: never read as an address; the session is the peer's own.
        wire = Wire(edge.mx_port)
        wire.reply()
        wire.send(proxy_v2_header("192.0.2.66", 40000))
        with pytest.raises(ConnectionError):
            while True:
                wire.reply()
        wire = _transaction(edge.mx_port)
        wire.command(b"DATA")
        wire.send(HEAD + b".\r\n")
        assert wire.reply()[-1].startswith(b"250")
    [key] = store.message_keys()
    assert store.get_envelope(key).peer == "127.0.0.1"


def test_proxy_headers_without_an_address_count_against_the_load_balancer():
    local = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00]) + b"\x00\x00"  # v2 LOCAL
    with running_edge(proxy_protocol=True, max_connections_per_client=2) as edge:
        sessions = []
        for header in (local, b"PROXY UNKNOWN\r\n"):
            wire = Wire(edge.mx_port)
            wire.send(header)
            assert wire.reply()[0].startswith(b"220")
            sessions.append(wire)
        third = Wire(edge.mx_port)
        third.send(b"PROXY UNKNOWN\r\n")
        assert third.reply()[0].startswith(b"421 4.7.0")
