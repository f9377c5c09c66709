"""The edge as a strict MX: extensions, enhanced codes, TLS, limits, smuggling, shutdown."""

from __future__ import annotations

import re
import smtplib
import socket
import threading
import time

import pytest

from edge.data_budget import DataBudget
from edge.smtp.accounts import CachingAccountDirectory
from edge.smtp.handler import EdgeHandler, OffLoopWriter, SubmissionHandler
from edge.smtp.server import EdgeConfig, smtp_factory
from edge.smtp.sessions import SessionRegistry
from mailcore.adapters.memory.directory import InMemoryAccountDirectory
from mailcore.adapters.memory.login_throttle import InMemoryLoginThrottle
from mailcore.adapters.memory.sending_limit import InMemorySendingLimit
from mailcore.adapters.memory.signing_keys import InMemorySigningKeys
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.services.recipients import HostedDomains
from tests.edge_support import Wire, proxy_v2_header, running_edge

MESSAGE = b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: hi\r\n\r\nHello\r\n"
ENHANCED = re.compile(rb"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}( |$)")


def _ehlo(port: int) -> tuple[Wire, list[bytes]]:
    wire = Wire(port)
    wire.reply()
    return wire, wire.command(b"EHLO crepes.fr")


def test_a_session_finds_every_command_mechanism_and_hook_of_its_classes():
    # The session and the handler list for dir() only what aiosmtpd looks up there, to
    # make a session cheaper (EdgeSMTP.__dir__): what it finds must still be all there is.
    def named(thing: object, prefix: str) -> set[str]:
        return {name.removeprefix(prefix) for name in object.__dir__(thing)
                if name.startswith(prefix)}

    config = EdgeConfig.from_environ({}, "hamburger.edu")
    writer = OffLoopWriter(InMemoryMessageStore())
    directory = CachingAccountDirectory(InMemoryAccountDirectory({}))
    domains = HostedDomains.of(("hamburger.edu",))
    mx = EdgeHandler(writer, directory, domains, config.hostname)
    submission = SubmissionHandler(writer, directory, domains, config.hostname,
                                   throttle=InMemoryLoginThrottle(),
                                   sending_limit=InMemorySendingLimit(),
                                   signing_keys=InMemorySigningKeys())
    for handler, mechanisms in ((mx, set()), (submission, {"PLAIN", "LOGIN"})):
        session = smtp_factory(handler, config, SessionRegistry(10, 10), None, DataBudget(1))
        assert set(session._smtp_methods) == named(session, "smtp_") >= {
            "EHLO", "MAIL", "RCPT", "DATA", "PROXY", "STARTTLS", "AUTH", "QUIT"}
        assert set(session._handle_hooks) == named(handler, "handle_") == {
            "EHLO", "PROXY", "MAIL", "RCPT", "DATA"}
        assert set(session._auth_methods) == mechanisms <= named(session, "auth_")
        assert session._ehlo_hook_ver == "new"


def test_ehlo_advertises_the_extensions_and_no_auth_on_the_mx_port():
    with running_edge() as edge:
        wire, lines = _ehlo(edge.mx_port)
        keywords = {line[4:].split(b" ")[0] for line in lines[1:]}
        assert {b"SIZE", b"8BITMIME", b"SMTPUTF8", b"PIPELINING", b"ENHANCEDSTATUSCODES",
                b"STARTTLS"} <= keywords
        assert b"SIZE 26214400" in [line[4:] for line in lines]
        assert not any(line[4:].startswith(b"AUTH") for line in lines)
        wire.close()


def test_every_reply_after_the_greeting_carries_an_enhanced_status_code():
    with running_edge() as edge:
        wire, _ = _ehlo(edge.mx_port)
        replies = [
            wire.command(b"RCPT TO:<bob@hamburger.edu>"),  # out of sequence
            wire.command(b"FOO"),
            wire.command(b"MAIL FROM:<alice@crepes.fr>"),
            wire.command(b"MAIL FROM:<alice@crepes.fr>"),  # nested
            wire.command(b"RCPT TO:<bob@hamburger.edu>"),
            wire.command(b"RCPT TO:bad address"),
            wire.command(b"NOOP"),
            wire.command(b"VRFY bob"),
            wire.command(b"RSET"),
            wire.command(b"DATA"),
            wire.command(b"QUIT"),
        ]
        for reply in replies:
            assert ENHANCED.match(reply[-1]), reply


def test_seed_helo_still_works():
    with running_edge() as edge, smtplib.SMTP("127.0.0.1", edge.mx_port) as client:
        assert client.helo("crepes.fr")[0] == 250
        assert client.sendmail("alice@crepes.fr", ["bob@hamburger.edu"], MESSAGE) == {}


def test_declared_size_over_the_limit_is_refused_at_mail():
    with running_edge() as edge:
        wire, _ = _ehlo(edge.mx_port)
        reply = wire.command(b"MAIL FROM:<alice@crepes.fr> SIZE=26214401")
        assert reply[-1].startswith(b"552 5.3.4")


def test_undeclared_oversize_body_is_refused_after_data_and_not_stored():
    store = InMemoryMessageStore()
    with running_edge(store, max_message_size=50_000) as edge:
        wire, _ = _ehlo(edge.mx_port)
        wire.command(b"MAIL FROM:<alice@crepes.fr>")
        wire.command(b"RCPT TO:<bob@hamburger.edu>")
        assert wire.command(b"DATA")[0].startswith(b"354")
        wire.send(MESSAGE + (b"x" * 70 + b"\r\n") * 2000 + b".\r\n")
        assert wire.reply()[-1].startswith(b"552 5.3.4")
        assert wire.command(b"NOOP")[-1].startswith(b"250")  # the session goes on
    assert store.message_keys() == []


def test_starttls_then_mail_is_traced_with_tls_version():
    store = InMemoryMessageStore()
    with running_edge(store) as edge, smtplib.SMTP("127.0.0.1", edge.mx_port) as client:
        client.ehlo("crepes.fr")
        assert client.starttls(context=edge.client_tls())[0] == 220
        client.ehlo("crepes.fr")
        assert not client.has_extn("starttls")
        assert not client.has_extn("auth")  # the MX port never offers AUTH
        client.sendmail("alice@crepes.fr", ["bob@hamburger.edu"], MESSAGE)
    [key] = store.message_keys()
    assert re.search(rb"with ESMTPS id \w+\r\n\t\(using TLSv1\.[23] with cipher ",
                     store.get_raw(key))
    assert store.get_envelope(key).tls is True


def test_commands_pipelined_before_starttls_are_discarded():
    store = InMemoryMessageStore()
    with running_edge(store) as edge:
        wire, _ = _ehlo(edge.mx_port)
        # A man in the middle could append these before the handshake (CVE-2011-0411).
        wire.send(b"STARTTLS\r\nMAIL FROM:<evil@crepes.fr>\r\n")
        assert wire.reply()[0].startswith(b"220")
        import ssl
        tls = edge.client_tls().wrap_socket(wire.socket, server_hostname="hamburger.edu")
        reader = tls.makefile("rb")
        tls.sendall(b"EHLO crepes.fr\r\nRCPT TO:<bob@hamburger.edu>\r\n")
        lines = []
        while not (lines and lines[-1][3:4] == b" " and lines[-1].startswith(b"503")):
            lines.append(reader.readline().rstrip(b"\r\n"))
            if len(lines) > 20:
                break
        # The injected MAIL was dropped, so RCPT is out of sequence.
        assert lines[-1].startswith(b"503 5.5.1"), lines
        assert isinstance(tls, ssl.SSLSocket)


def test_pipelined_transaction_gets_its_replies_in_order():
    store = InMemoryMessageStore()
    with running_edge(store) as edge:
        wire, _ = _ehlo(edge.mx_port)
        wire.send(b"MAIL FROM:<alice@crepes.fr>\r\nRCPT TO:<bob@hamburger.edu>\r\n"
                  b"RCPT TO:<nobody@hamburger.edu>\r\nDATA\r\n")
        codes = [wire.reply()[-1][:3] for _ in range(4)]
        assert codes == [b"250", b"250", b"550", b"354"]
        wire.send(MESSAGE + b".\r\nQUIT\r\n")
        assert wire.reply()[-1].startswith(b"250 2.0.0")
        assert wire.reply()[-1].startswith(b"221")
    assert len(store.message_keys()) == 1


SMUGGLING_ENDS = [b"\n.\n", b"\r.\r", b"\r.\n", b"\n.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n",
                  b"\r\n.\r", b"\r\n.\r\r\n", b"\r\r\n.\r\r\n", b"\r\n\x00.\r\n", b"\r\n.\x00\r\n"]


@pytest.mark.parametrize("fake_end", SMUGGLING_ENDS, ids=repr)
def test_smuggled_end_of_data_never_makes_a_second_message(fake_end):
    store = InMemoryMessageStore()
    smuggled = (b"MAIL FROM:<admin@hamburger.edu>\r\nRCPT TO:<carol@hamburger.edu>\r\n"
                b"DATA\r\nFrom: admin@hamburger.edu\r\nSubject: smuggled\r\n\r\nowned\r\n")
    with running_edge(store) as edge:
        wire, _ = _ehlo(edge.mx_port)
        wire.command(b"MAIL FROM:<alice@crepes.fr>")
        wire.command(b"RCPT TO:<bob@hamburger.edu>")
        wire.command(b"DATA")
        wire.send(b"From: alice@crepes.fr\r\nSubject: first\r\n\r\nbody" + fake_end + smuggled
                  + b".\r\n")
        final = wire.reply()[-1]
        wire.send(b"QUIT\r\n")
        assert wire.reply()[-1][:3] == b"221"  # no stray replies from a second transaction
    keys = store.message_keys()
    assert len(keys) <= 1
    assert all(store.get_envelope(key).rcpt_tos == ("bob@hamburger.edu",) for key in keys)
    if keys:  # kept inside the first message
        assert final.startswith(b"250") and b"smuggled" in store.get_raw(keys[0])
    else:
        assert final.startswith(b"550 5.6.0")


@pytest.mark.parametrize("body", [b"line one\nline two\r\n", b"line one\rline two\r\n"])
def test_bare_line_endings_are_refused_with_a_clear_code(body):
    store = InMemoryMessageStore()
    with running_edge(store) as edge, smtplib.SMTP("127.0.0.1", edge.mx_port) as client:
        client.ehlo("crepes.fr")
        client.mail("alice@crepes.fr")
        client.rcpt("bob@hamburger.edu")
        # smtplib would normalise line endings in sendmail(); send the bytes as they are.
        client.putcmd("data")
        assert client.getreply()[0] == 354
        client.send(b"Subject: bare\r\n\r\n" + body + b".\r\n")
        code, reply = client.getreply()
    assert (code, reply[:5]) == (550, b"5.6.0")
    assert store.message_keys() == []


def test_recipients_beyond_the_limit_get_452_4_5_3():
    with running_edge(max_recipients=3) as edge:
        wire, _ = _ehlo(edge.mx_port)
        wire.command(b"MAIL FROM:<alice@crepes.fr>")
        codes = [wire.command(b"RCPT TO:<bob@hamburger.edu>")[-1][:9] for _ in range(4)]
        assert codes == [b"250 2.1.5"] * 3 + [b"452 4.5.3"]
        wire.close()


def test_connections_beyond_the_limits_get_421_4_7_0():
    with running_edge(max_connections_per_client=2) as edge:
        held = [Wire(edge.mx_port) for _ in range(2)]
        for wire in held:
            assert wire.reply()[0].startswith(b"220")
        refused = Wire(edge.mx_port)
        assert refused.reply()[0].startswith(b"421 4.7.0")
        for wire in held:
            wire.close()
    with running_edge(max_connections=1) as edge:
        first = Wire(edge.mx_port)
        first.reply()
        assert Wire(edge.mx_port).reply()[0].startswith(b"421 4.7.0")
        first.close()


def test_idle_session_is_closed_with_421_after_the_timeout():
    with running_edge(command_timeout=1) as edge:
        wire, _ = _ehlo(edge.mx_port)
        started = time.monotonic()
        assert wire.reply()[0].startswith(b"421 4.4.2")
        assert time.monotonic() - started < 10


def test_too_many_errors_close_the_session():
    with running_edge(max_errors=3) as edge:
        wire, _ = _ehlo(edge.mx_port)
        wire.command(b"MAIL FROM:<alice@crepes.fr>")
        for _ in range(2):
            assert wire.command(b"RCPT TO:<x@elsewhere.test>")[-1][:3] == b"550"
        wire.send(b"RCPT TO:<y@elsewhere.test>\r\n")
        assert wire.reply()[-1][:3] == b"550"
        assert wire.reply()[-1].startswith(b"421 4.7.0")
        with pytest.raises(ConnectionError):
            wire.reply()


def test_proxy_protocol_v2_gives_the_real_client_address():
    store = InMemoryMessageStore()
    with running_edge(store, proxy_protocol=True) as edge:
        wire = Wire(edge.mx_port)
        wire.send(proxy_v2_header("203.0.113.7", 40000))
        assert wire.reply()[0].startswith(b"220")
        wire.command(b"HELO crepes.fr")
        wire.command(b"MAIL FROM:<alice@crepes.fr>")
        wire.command(b"RCPT TO:<bob@hamburger.edu>")
        wire.command(b"DATA")
        wire.send(MESSAGE + b".\r\n")
        assert wire.reply()[-1].startswith(b"250")
    [key] = store.message_keys()
    assert store.get_envelope(key).peer == "203.0.113.7"
    assert b"(203.0.113.7)" in store.get_raw(key).split(b"\r\n")[0]


def test_sigterm_finishes_transactions_in_flight_and_refuses_new_sessions():
    store = InMemoryMessageStore()
    with running_edge(store, grace_seconds=10) as edge:
        busy, _ = _ehlo(edge.mx_port)
        busy.command(b"MAIL FROM:<alice@crepes.fr>")
        busy.command(b"RCPT TO:<bob@hamburger.edu>")
        idle, _ = _ehlo(edge.mx_port)
        stopping = threading.Thread(target=edge.stop)
        stopping.start()
        assert idle.reply()[0].startswith(b"421 4.3.2")
        late = Wire(edge.mx_port)
        assert late.reply()[0].startswith(b"421 4.3.2")
        assert busy.command(b"DATA")[0].startswith(b"354")
        busy.send(MESSAGE + b".\r\n")
        assert busy.reply()[-1].startswith(b"250 2.0.0")
        stopping.join(timeout=20)
        assert not stopping.is_alive()
    assert len(store.message_keys()) == 1


def test_health_endpoint_says_ok_then_draining():
    def health(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(b"GET / HTTP/1.1\r\nHost: edge\r\n\r\n")
            return connection.makefile("rb").readline()

    with running_edge(grace_seconds=1) as edge:
        port = edge.health_port
        assert health(port).startswith(b"HTTP/1.1 200")
        busy, _ = _ehlo(edge.mx_port)
        busy.command(b"MAIL FROM:<alice@crepes.fr>")  # keeps the drain waiting
        stopping = threading.Thread(target=edge.stop)
        stopping.start()
        while not edge.edge.registry.draining:
            time.sleep(0.01)
        assert health(port).startswith(b"HTTP/1.1 503")
        stopping.join(timeout=20)


RELAY_VECTORS = [
    b"<bob%elsewhere.test@hamburger.edu>",  # percent hack
    b'<"bob@elsewhere.test"@hamburger.edu>',  # quoted local part with @
    b"<@hamburger.edu:bob@elsewhere.test>",  # source route
    b"<elsewhere.test!bob@hamburger.edu>",  # bang path
    b"<bob@[127.0.0.1]>",  # IP literal
    b"<bob@elsewhere.test.>",  # trailing dot
    b"<bob@elsewhere.test (bob@hamburger.edu)>",  # comment naming a hosted address
    b"<bob@elsewhere.test>",
    b"<BOB@ELSEWHERE.TEST>",
]


def test_relay_vectors_on_the_wire_are_refused_unless_they_resolve_to_a_hosted_account():
    store = InMemoryMessageStore()
    with running_edge(store) as edge:
        wire, _ = _ehlo(edge.mx_port)
        wire.command(b"MAIL FROM:<alice@crepes.fr>")
        for vector in RELAY_VECTORS:
            reply = wire.command(b"RCPT TO:" + vector)[-1]
            assert reply[:1] == b"5", (vector, reply)
        for resolves_to_bob in (b"<Bob@HAMBURGER.edu>", b"<bob@hamburger.edu (comment)>"):
            reply = wire.command(b"RCPT TO:" + resolves_to_bob)[-1]
            assert reply.startswith(b"250 2.1.5"), (resolves_to_bob, reply)
        wire.command(b"DATA")
        wire.send(MESSAGE + b".\r\n")
        assert wire.reply()[-1].startswith(b"250")
    [key] = store.message_keys()
    assert store.get_envelope(key).rcpt_tos == ("bob@hamburger.edu", "bob@hamburger.edu")
