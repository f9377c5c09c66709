"""The edge as an MX, driven by Python's smtplib against a real aiosmtpd server."""

from __future__ import annotations

import smtplib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from aiosmtpd.controller import Controller
from mailcore.adapters.aws.wiring import aws_adapters
from mailcore.adapters.memory.directory import InMemoryAccountDirectory
from mailcore.adapters.memory.store import InMemoryRawMessageStore
from mailcore.domain.ids import message_id_of_key
from mailcore.ports import RawMessageStore
from mailcore.services.recipients import HostedDomains

from edge_smtp.accounts import CachingAccountDirectory
from edge_smtp.handler import EdgeHandler
from edge_smtp.server import ListenerConfig, smtp_factory
from tests.conftest import free_port

SEED = (b"From: Alice <alice@crepes.fr>\r\nTo: Bob <bob@hamburger.edu>\r\n"
        b"Subject: Test Email\r\n\r\nHello\r\nHow are you?\r\n")


class EdgeController(Controller):
    def __init__(self, handler: EdgeHandler, port: int) -> None:
        self.config = ListenerConfig(host="127.0.0.1", port=port, hostname="hamburger.edu")
        super().__init__(handler, hostname="127.0.0.1", port=port)

    def factory(self):
        return smtp_factory(self.handler, self.config)


@contextmanager
def running_edge(store: RawMessageStore, accounts=("bob@hamburger.edu",)) -> Iterator[int]:
    directory = InMemoryAccountDirectory({account: "pw" for account in accounts})
    handler = EdgeHandler(store, CachingAccountDirectory(directory),
                          HostedDomains.of(["hamburger.edu"]), "hamburger.edu",
                          ThreadPoolExecutor(max_workers=8))
    port = free_port()
    controller = EdgeController(handler, port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_seed_transcript_is_accepted_and_stored_with_envelope_and_trace_header():
    store = InMemoryRawMessageStore()
    with running_edge(store) as port, smtplib.SMTP("127.0.0.1", port) as client:
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
    with running_edge(InMemoryRawMessageStore()) as port, smtplib.SMTP("127.0.0.1", port) as c:
        c.ehlo("crepes.fr")
        c.mail("alice@crepes.fr")
        assert c.rcpt("nobody@hamburger.edu") == (550, b"5.1.1 No such user here")


def test_foreign_domain_is_refused_at_rcpt_as_relaying_with_5_7_1():
    with running_edge(InMemoryRawMessageStore()) as port, smtplib.SMTP("127.0.0.1", port) as c:
        c.ehlo("crepes.fr")
        c.mail("alice@crepes.fr")
        assert c.rcpt("someone@elsewhere.test") == (550, b"5.7.1 Relaying denied")
        assert c.rcpt("someone%elsewhere.test@hamburger.edu")[0] == 550


def test_storage_fault_answers_451_and_stores_nothing():
    store = InMemoryRawMessageStore()
    store.available = False
    with running_edge(store) as port, smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("crepes.fr")
        client.mail("alice@crepes.fr")
        client.rcpt("bob@hamburger.edu")
        code, reply = client.data(SEED)
    assert (code, reply[:5]) == (451, b"4.3.0")
    assert store.message_keys() == []


def test_slow_storage_does_not_stop_other_sessions():
    """A blocking store call on the event loop would hold the second session's replies."""
    store = InMemoryRawMessageStore(latency_seconds=2.0)
    with running_edge(store) as port:
        first_done = threading.Event()

        def send_slowly():
            with smtplib.SMTP("127.0.0.1", port) as client:
                client.sendmail("alice@crepes.fr", ["bob@hamburger.edu"], SEED)
            first_done.set()

        sender = threading.Thread(target=send_slowly)
        sender.start()
        assert store.put_started.wait(timeout=10)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as second:
            assert second.ehlo("crepes.fr")[0] == 250
            assert second.noop()[0] == 250
            served_while_storing = not first_done.is_set()
        sender.join()
    assert served_while_storing
    assert len(store.message_keys()) == 1


def test_edge_stores_into_the_templates_bucket(stack):
    """The same path with the S3 adapter: raw object and envelope land in moto's S3."""
    store = aws_adapters().store
    with running_edge(store) as port, smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("crepes.fr")
        client.mail("alice@crepes.fr")
        client.rcpt("bob@hamburger.edu")
        code, reply = client.data(SEED)
    assert code == 250
    message_id = reply.decode().rsplit(" ", 1)[-1]
    key = f"messages/{message_id}/message.eml"
    assert store.get_raw(key).endswith(SEED)
    assert store.get_envelope(key).rcpt_tos == ("bob@hamburger.edu",)


def test_s3_fault_answers_451(stack):
    from mailcore.adapters.aws.clients import s3_client
    from mailcore.adapters.aws.s3_store import S3RawMessageStore

    with running_edge(S3RawMessageStore(s3_client(), "no-such-bucket")) as port, \
            smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo("crepes.fr")
        client.mail("alice@crepes.fr")
        client.rcpt("bob@hamburger.edu")
        assert client.data(SEED)[0] == 451
