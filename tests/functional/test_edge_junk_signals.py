"""Junk signals at the MX port (issue 29, item 4) through the real edge: smtplib clients from
other loopback addresses (127.0.0.2 is listed, 127.0.0.3 gets the blocklist's refusal,
127.0.0.1 is clean), a private dnsmasq serving the test blocklist zone, the message stored
through the edge's S3 writer into moto's server and its envelope read back from there.
Nothing is refused for a signal: every message gets 250."""

from __future__ import annotations

import logging
import smtplib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import botocore.session
import pytest
from botocore.config import Config
from botocore.credentials import Credentials

from edge.listening import networks
from edge.smtp.inbound import InboundVerifier
from edge.smtp.junk_signals import Blocklists, EdgeSignals
from mailcore.adapters.aws.s3_store import S3RawMessageStore
from mailcore.adapters.aws.s3_writer import S3MessageWriter
from mailcore.adapters.dns_resolver import DnsServer, ResolverDns, async_resolver
from mailcore.domain.envelope import Envelope
from mailcore.domain.junk import GTUBE
from mailcore.s3_keys import message_key
from mailcore.services.recipients import HostedDomains
from mailpipe.local.launcher import free_ports
from mailpipe.local.metering import Meter, MeteredMotoServer
from tests.dns_support import BrokenDns, Dnsmasq, Zone
from tests.edge_support import RunningEdge, Wire, proxy_v2_header, running_edge

LISTING = "bl.test"  # lists 127.0.0.2, refuses the query for 127.0.0.3
QUIET = "quiet.test"  # lists nobody
BOB = "bob@hamburger.edu"
LOOKUP_SECONDS = 1.0  # a dropped query costs this here, not the default 3 s
LISTED, REFUSED, CLEAN = "127.0.0.2", "127.0.0.3", "127.0.0.1"


def _message(subject: str, body: bytes = b"Crepes on Saturday.\r\n") -> bytes:
    return (f"From: Alice <alice@crepes.fr>\r\nTo: Bob <{BOB}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@crepes.fr>\r\n\r\n").encode() + body


@dataclass
class S3:
    client: object
    bucket: str

    def envelope(self, message_id: str) -> Envelope:
        store = S3RawMessageStore(self.client, self.bucket)  # type: ignore[arg-type]
        return store.get_message(message_key(message_id))[0]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    (port,) = free_ports(1)
    server = MeteredMotoServer(Meter(), "127.0.0.1", port)  # as the local runtime serves it
    server.start()
    try:
        client = botocore.session.get_session().create_client(
            "s3", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(s3={"addressing_style": "path"}))
        client.create_bucket(Bucket="mail")
        yield S3(client, "mail")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def dns() -> Iterator[Dnsmasq]:
    zone = Zone(a={f"2.0.0.127.{LISTING}": ["127.0.0.2"],
                   f"3.0.0.127.{LISTING}": ["127.255.255.254"]})
    with Dnsmasq(zone) as server:
        yield server


@contextmanager
def _edge(s3: S3, dns_address: str, verify: bool = False, **overrides: object
          ) -> Iterator[RunningEdge]:
    """An MX edge whose blocklists are LISTING and QUIET, asked through `dns_address`."""
    resolver = ResolverDns(async_resolver(DnsServer.parse(dns_address), LOOKUP_SECONDS),
                           LOOKUP_SECONDS)
    hosted = HostedDomains.of(["hamburger.edu"])
    verifier = InboundVerifier(resolver, hosted, "hamburger.edu", budget=4 * LOOKUP_SECONDS)
    signals = EdgeSignals(Blocklists(resolver, (LISTING, QUIET)), budget=LOOKUP_SECONDS)
    writer = S3MessageWriter(s3.client, s3.bucket,  # type: ignore[arg-type]
                             Credentials("testing", "testing"))
    with running_edge(writer=writer, verifier=verifier if verify else None,
                      signals=signals, **overrides) as edge:
        yield edge


def _send(edge: RunningEdge, source: str, raw: bytes) -> str:
    """The id the edge queued the message as; smtplib raises on anything but 250."""
    with smtplib.SMTP("127.0.0.1", edge.mx_port, local_hostname="mail.crepes.fr",
                      source_address=(source, 0), timeout=30) as client:
        client.ehlo()
        client.mail("alice@crepes.fr")
        client.rcpt(BOB)
        code, reply = client.data(raw)
    assert code == 250, reply
    return reply.decode().rsplit(" ", 1)[1]


@pytest.mark.parametrize("verify", [False, True], ids=["verification-off", "verification-on"])
def test_only_the_listed_client_is_marked_and_every_message_is_accepted(
        s3: S3, dns: Dnsmasq, verify: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with _edge(s3, dns.address, verify) as edge:
        sent = {source: [_send(edge, source, _message(f"from {source} {n}")) for n in (1, 2)]
                for source in (LISTED, REFUSED, CLEAN)}
    for source, message_ids in sent.items():
        for message_id in message_ids:
            envelope = s3.envelope(message_id)
            assert envelope.peer == source
            assert envelope.signals.dnsbl == ((LISTING,) if source == LISTED else ())
            assert envelope.signals.gtube is False
    # The refusal (127.255.255.254) is said once for the process, naming zone and code,
    # though 127.0.0.3 sent twice; the listing is logged with its zones.
    refusals = [record for record in caplog.records if record.getMessage()
                == "blocklist refuses our queries: its answers are not listings"]
    assert [(r.levelname, r.zone, r.code) for r in refusals] == [  # type: ignore[attr-defined]
        ("WARNING", LISTING, "127.255.255.254")]
    listed = [record for record in caplog.records
              if record.getMessage() == "client blocklisted"]
    assert [(r.peer, r.zones) for r in listed] == [  # type: ignore[attr-defined]
        (LISTED, [LISTING])] * 2


@pytest.mark.parametrize("verify", [False, True], ids=["verification-off", "verification-on"])
def test_gtube_in_the_body_marks_the_message(s3: S3, dns: Dnsmasq, verify: bool) -> None:
    body = b"Testing our Junk folder:\r\n" + GTUBE + b"\r\n"
    with _edge(s3, dns.address, verify) as edge:
        marked = _send(edge, CLEAN, _message("gtube", body))
        listed_and_marked = _send(edge, LISTED, _message("gtube listed", body))
        # The string cut by a line break is not the test string.
        cut = GTUBE[:20] + b"\r\n" + GTUBE[20:]
        unmarked = _send(edge, CLEAN, _message("not gtube", cut + b"\r\n"))
    assert s3.envelope(marked).signals.gtube is True
    assert s3.envelope(marked).signals.dnsbl == ()
    signals = s3.envelope(listed_and_marked).signals
    assert (signals.gtube, signals.dnsbl) == (True, (LISTING,))
    assert s3.envelope(unmarked).signals.gtube is False


@pytest.mark.parametrize("behaviour", ["drop", "servfail"])
def test_a_blocklist_that_does_not_answer_lists_nobody_and_delays_no_more_than_its_budget(
        s3: S3, behaviour: str, caplog: pytest.LogCaptureFixture) -> None:
    with BrokenDns(behaviour) as broken, _edge(s3, broken.address) as edge:
        started = time.monotonic()
        message_id = _send(edge, LISTED, _message(f"broken dns {behaviour}"))
        took = time.monotonic() - started
        assert broken.queries >= 2  # both zones were asked
    assert s3.envelope(message_id).signals.dnsbl == ()
    # The lookups run beside the conversation, within one budget for all of them.
    assert took < LOOKUP_SECONDS + 1.5, took
    unanswered = {record.getMessage() for record in caplog.records
                  if record.levelname == "WARNING"}
    assert unanswered & {"blocklist not answered",
                         "blocklists unanswered within the budget"}, unanswered


def test_behind_a_trusted_load_balancer_the_proxied_client_is_the_one_asked_about(
        s3: S3, dns: Dnsmasq) -> None:
    # The load balancer (127.0.0.1 here) is clean; the client it reports is listed.
    with _edge(s3, dns.address, proxy_protocol=True,
               proxy_trusted=networks("127.0.0.1/32")) as edge:
        wire = Wire(edge.mx_port)
        try:
            wire.send(proxy_v2_header(LISTED, 40000))
            assert wire.reply()[0].startswith(b"220")
            for command in (b"EHLO mail.crepes.fr", b"MAIL FROM:<alice@crepes.fr>",
                            f"RCPT TO:<{BOB}>".encode(), b"DATA"):
                wire.command(command)
            [reply] = wire.command(_message("proxied") + b".")
        finally:
            wire.close()
    assert reply.startswith(b"250 "), reply
    envelope = s3.envelope(reply.decode().rsplit(" ", 1)[1])
    assert (envelope.peer, envelope.signals.dnsbl) == (LISTED, (LISTING,))
