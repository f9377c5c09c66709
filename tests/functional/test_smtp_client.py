"""The delivery SMTP client against real servers: the edge itself and Postfix's smtp-sink."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from mailcore.adapters.smtp_client import SmtpClientPool
from mailcore.parsing.bounded import summarise
from mailcore.ports import NextHop
from mailpipe.local.launcher import free_port
from tests.edge_support import running_edge

BOB = "bob@hamburger.edu"
RAW = b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: hi\r\n\r\nbody\r\n"


def _hop(port: int) -> list[NextHop]:
    return [NextHop("127.0.0.1", port, operator_named=True)]


def test_one_connection_carries_many_messages_with_rset_between():
    with running_edge() as edge:
        pool = SmtpClientPool("crepes.fr")
        for number in range(5):
            [reply] = pool.send(_hop(edge.mx_port), "alice@crepes.fr", (BOB,),
                                RAW.replace(b"Subject: hi", f"Subject: {number}".encode()))
            assert reply.code == 250
        pool.close()
        assert pool.connections_opened == 1
        assert len(edge.store.message_keys()) == 5
        # Opportunistic STARTTLS was used: the edge offered it.
        assert all(b"with ESMTPS" in edge.store.get_raw(key) for key in edge.store.message_keys())


def test_dots_at_line_starts_and_bare_line_endings_arrive_as_crlf_text():
    tricky = (b"From: alice@crepes.fr\r\nSubject: dots\r\n\r\n.hidden line\r\n.\r\n"
              b"bare\nline\rend\r\n")
    with running_edge() as edge:
        pool = SmtpClientPool("crepes.fr")
        [reply] = pool.send(_hop(edge.mx_port), "alice@crepes.fr", (BOB,), tricky)
        pool.close()
        assert reply.code == 250  # the edge refuses bare CR/LF, so they were normalised
        [key] = edge.store.message_keys()
        assert edge.store.get_raw(key).endswith(
            b"\r\n\r\n.hidden line\r\n.\r\nbare\r\nline\r\nend\r\n")


def test_per_recipient_replies_and_refused_recipients_get_no_data():
    with running_edge() as edge:
        pool = SmtpClientPool("crepes.fr")
        replies = {r.recipient: r.code for r in pool.send(
            _hop(edge.mx_port), "alice@crepes.fr", (BOB, "nobody@hamburger.edu"), RAW)}
        pool.close()
        assert replies == {BOB: 250, "nobody@hamburger.edu": 550}
        [key] = edge.store.message_keys()
        assert edge.store.get_envelope(key).rcpt_tos == (BOB,)


def test_message_over_the_peers_size_is_refused_without_sending():
    with running_edge(max_message_size=1000) as edge:
        pool = SmtpClientPool("crepes.fr")
        [reply] = pool.send(_hop(edge.mx_port), "alice@crepes.fr", (BOB,), RAW + b"x" * 2000)
        pool.close()
        assert (reply.code, reply.text[:5]) == (552, "5.3.4")
        assert edge.store.message_keys() == []


def test_unreachable_hop_falls_through_to_the_next_mx():
    with running_edge() as edge:
        pool = SmtpClientPool("crepes.fr")
        [reply] = pool.send([NextHop("127.0.0.1", free_port(), operator_named=True),
                             NextHop("127.0.0.1", edge.mx_port, operator_named=True)],
                            "alice@crepes.fr", (BOB,), RAW)
        pool.close()
        assert reply.code == 250
        assert summarise(edge.store.get_raw(edge.store.message_keys()[0])).subject == "hi"


@contextmanager
def smtp_sink(*options: str) -> Iterator[int]:
    port = free_port()
    sink = subprocess.Popen([shutil.which("smtp-sink") or "smtp-sink", "-u", "nobody",
                             *options, f"127.0.0.1:{port}", "10"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        sink.terminate()
        sink.wait(timeout=10)


@pytest.mark.parametrize("options,expected", [
    ((), 250),                      # accepts everything
    (("-f", "RCPT"), 550),          # hard error at RCPT: bounce
    (("-r", "RCPT"), 450),          # soft error at RCPT: defer
    (("-Q", "DATA"), 421),          # 421 and disconnect at DATA: defer
])
def test_replies_from_smtp_sink_fault_injection(options, expected):
    with smtp_sink(*options) as port:
        pool = SmtpClientPool("crepes.fr")
        [reply] = pool.send(_hop(port), "alice@crepes.fr", ("x@sink.test",), RAW)
        pool.close()
    assert reply.code // 100 == expected // 100, reply


def test_relay_mode_requires_tls_and_authenticates():
    """The edge's submission port stands in for a smart host such as SES's SMTP endpoint."""
    with running_edge() as edge:
        pool = SmtpClientPool("crepes.fr", require_tls=True,
                              credentials=("bob@hamburger.edu", "bob-password"),
                              tls_context=edge.client_tls())
        [reply] = pool.send(_hop(edge.submission_port), "bob@hamburger.edu",
                            ("zoe@elsewhere.test",), RAW.replace(b"alice@crepes.fr",
                                                                 b"bob@hamburger.edu"))
        pool.close()
        assert reply.code == 250, reply
        [key] = edge.store.message_keys()
        assert edge.store.get_envelope(key).submitted_by == "bob@hamburger.edu"

        wrong = SmtpClientPool("crepes.fr", require_tls=True,
                               credentials=("bob@hamburger.edu", "nope"),
                               tls_context=edge.client_tls())
        [refused] = wrong.send(_hop(edge.submission_port), "bob@hamburger.edu",
                               ("zoe@elsewhere.test",), RAW)
        assert refused.code == 0 and refused.text.startswith("4.4.1")  # deferred, not lost


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "169.254.169.254",
                                  "10.1.2.3", "192.168.0.1", "0.0.0.0"])
def test_a_next_hop_from_dns_on_a_non_public_address_is_never_connected_to(host):
    """An MX record is anyone's to write: pointed at loopback, the VPC or the instance
    metadata address, it must not make our SMTP client connect there."""
    with running_edge() as edge:
        pool = SmtpClientPool("crepes.fr", timeout=2)
        [reply] = pool.send([NextHop(host, edge.mx_port)], "alice@crepes.fr", (BOB,), RAW)
        pool.close()
        assert (reply.code, reply.text[:5]) == (550, "5.4.4")
        assert edge.store.message_keys() == []


def test_an_operator_named_hop_may_be_on_loopback():
    with running_edge() as edge:
        pool = SmtpClientPool("crepes.fr")
        [reply] = pool.send([NextHop("localhost", edge.mx_port, operator_named=True)],
                            "alice@crepes.fr", (BOB,), RAW)
        pool.close()
        assert reply.code == 250
