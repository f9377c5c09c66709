"""The edge as an MX, driven by Python's smtplib against a real aiosmtpd server."""

from __future__ import annotations

import smtplib
import threading

from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.domain.envelope import Envelope
from mailcore.errors import StorageUnavailable
from mailcore.s3_keys import message_id_of_key
from tests.edge_support import running_edge

SEED = (b"From: Alice <alice@crepes.fr>\r\nTo: Bob <bob@hamburger.edu>\r\n"
        b"Subject: Test Email\r\n\r\nHello\r\nHow are you?\r\n")


def test_seed_transcript_is_accepted_and_stored_with_envelope_and_trace_header():
    store = InMemoryMessageStore()
    with running_edge(store) as edge, smtplib.SMTP("127.0.0.1", edge.mx_port) as client:
        assert client.helo("crepes.fr")[0] == 250
        assert client.mail("alice@crepes.fr")[0] == 250
        assert client.rcpt("bob@hamburger.edu")[0] == 250
        code, reply = client.data(SEED)
    assert code == 250
    [key] = store.message_keys()
    assert message_id_of_key(key).encode() in reply  # the id in the 250 is the stored one
    raw = store.get_raw(key)
    assert raw.startswith(b"Received: from crepes.fr (127.0.0.1)")
    assert raw.endswith(SEED)
    envelope = store.get_envelope(key)
    assert (envelope.mail_from, envelope.rcpt_tos, envelope.helo, envelope.peer) == (
        "alice@crepes.fr", ("bob@hamburger.edu",), "crepes.fr", "127.0.0.1")


def test_unknown_account_is_refused_at_rcpt_with_5_1_1():
    with running_edge() as edge, smtplib.SMTP("127.0.0.1", edge.mx_port) as c:
        c.ehlo("crepes.fr")
        c.mail("alice@crepes.fr")
        assert c.rcpt("nobody@hamburger.edu") == (550, b"5.1.1 No such user here")


def test_foreign_domain_is_refused_at_rcpt_as_relaying_with_5_7_1():
    with running_edge() as edge, smtplib.SMTP("127.0.0.1", edge.mx_port) as c:
        c.ehlo("crepes.fr")
        c.mail("alice@crepes.fr")
        assert c.rcpt("someone@elsewhere.test") == (550, b"5.7.1 Relaying denied")
        assert c.rcpt("someone%elsewhere.test@hamburger.edu")[0] == 550


class UnavailableStore(InMemoryMessageStore):
    """Storage that is down: every write fails, as S3's would."""

    def put(self, message_id: str, raw: bytes, envelope: Envelope) -> str:
        raise StorageUnavailable("store made unavailable")


def test_storage_fault_answers_451_and_stores_nothing():
    store = UnavailableStore()
    with running_edge(store) as edge, smtplib.SMTP("127.0.0.1", edge.mx_port) as client:
        client.ehlo("crepes.fr")
        client.mail("alice@crepes.fr")
        client.rcpt("bob@hamburger.edu")
        code, reply = client.data(SEED)
    assert (code, reply[:5]) == (451, b"4.3.0")
    assert store.message_keys() == []


def test_slow_storage_does_not_stop_other_sessions():
    """A blocking store call on the event loop would hold the second session's replies."""
    store = InMemoryMessageStore(latency_seconds=2.0)
    with running_edge(store) as edge:
        first_done = threading.Event()

        def send_slowly():
            with smtplib.SMTP("127.0.0.1", edge.mx_port) as client:
                client.sendmail("alice@crepes.fr", ["bob@hamburger.edu"], SEED)
            first_done.set()

        sender = threading.Thread(target=send_slowly)
        sender.start()
        assert store.put_started.wait(timeout=10)
        with smtplib.SMTP("127.0.0.1", edge.mx_port, timeout=10) as second:
            assert second.ehlo("crepes.fr")[0] == 250
            assert second.noop()[0] == 250
            served_while_storing = not first_done.is_set()
        sender.join()
    assert served_while_storing
    assert len(store.message_keys()) == 1
