"""Inbound verification at the MX port (issue 28) through the real edge, a private dnsmasq
serving the senders' SPF, DKIM and DMARC records, and real SMTP clients (smtplib, swaks):
what is refused at the end of DATA, the Authentication-Results field stored in front of
the message, the verdict in the envelope and where filing puts it (Inbox or Junk)."""

from __future__ import annotations

import re
import shutil
import smtplib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import authres
import dkim
import pytest

from edge.smtp.inbound import InboundVerifier
from mailcore.adapters.dns_resolver import DnsServer, ResolverDns, async_resolver
from mailcore.adapters.memory.mailbox import InMemoryMailboxRepository
from mailcore.adapters.memory.raw_references import InMemoryRawReferences
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.adapters.memory.views import InMemoryImapViews
from mailcore.authentication.signing_keys import new_keys
from mailcore.domain.envelope import Envelope
from mailcore.domain.mailbox import INBOX, JUNK
from mailcore.domain.verdict import Result
from mailcore.s3_keys import message_key
from mailcore.services.filing import file_inbound
from mailcore.services.recipients import HostedDomains
from tests.dns_support import BrokenDns, Dnsmasq, Zone
from tests.edge_support import RunningEdge, running_edge

OURS = "hamburger.edu"  # the test edge's --hostname: our authserv-id
HOSTED = HostedDomains.of(["hamburger.edu", "burger.edu"])
BOB = "bob@hamburger.edu"
KEYS = new_keys("crepes.fr", date(2026, 12, 7))
# A lookup's budget in these tests: a dropped query costs this, not the default 3 s.
LOOKUP_SECONDS = 1.0


def _zone() -> Zone:
    zone = Zone()
    for key in KEYS:
        zone.add_txt(key.record_name, key.txt_record)
    zone.add_txt("crepes.fr", "v=spf1 ip4:127.0.0.0/8 -all")
    zone.add_txt("_dmarc.crepes.fr", "v=DMARC1; p=reject")
    zone.add_txt("spoofed.example", "v=spf1 -all")
    zone.add_txt("_dmarc.waffles.be", "v=DMARC1; p=quarantine")
    zone.add_txt("_dmarc.hamburger.edu", "v=DMARC1; p=quarantine")
    zone.add_txt("_dmarc.burger.edu", "v=DMARC1; p=reject")
    return zone


@dataclass
class Mx:
    edge: RunningEdge
    store: InMemoryMessageStore
    mailboxes: InMemoryMailboxRepository
    references: InMemoryRawReferences

    def send(self, raw: bytes, mail_from: str, helo: str = "mail.crepes.fr") -> str:
        """The message id the edge queued it as (smtplib raises on a refusal)."""
        with smtplib.SMTP("127.0.0.1", self.edge.mx_port, local_hostname=helo,
                          timeout=30) as client:
            client.ehlo()
            client.mail(mail_from)
            client.rcpt(BOB)
            code, reply = client.data(raw)
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        return reply.decode().rsplit(" ", 1)[1]

    def stored(self, message_id: str) -> tuple[Envelope, bytes]:
        return self.store.get_message(message_key(message_id))

    def file(self, message_id: str) -> str:
        """Filed as file_message files it; the folder Bob's copy is in."""
        file_inbound(message_key(message_id), self.store, self.mailboxes, HOSTED,
                     references=self.references, views=InMemoryImapViews(self.mailboxes))
        return self.mailboxes.get(BOB, message_id).folder


@contextmanager
def _mx(dns_address: str) -> Iterator[Mx]:
    resolver = ResolverDns(async_resolver(DnsServer.parse(dns_address), LOOKUP_SECONDS),
                           LOOKUP_SECONDS)
    verifier = InboundVerifier(resolver, HOSTED, OURS, budget=4 * LOOKUP_SECONDS)
    store = InMemoryMessageStore()
    references = InMemoryRawReferences()
    with running_edge(store=store, hosted=tuple(HOSTED.names), verifier=verifier) as edge:
        yield Mx(edge, store, InMemoryMailboxRepository(references), references)


@pytest.fixture(scope="module")
def mx() -> Iterator[Mx]:
    with Dnsmasq(_zone()) as dns, _mx(dns.address) as running:
        yield running


def _message(sender: str, subject: str, extra: bytes = b"") -> bytes:
    return (f"From: Alice <{sender}>\r\nTo: Bob <{BOB}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@test>\r\n").encode() + extra + (
        b"\r\n" + b"Crepes for everyone on Saturday.\r\n" * 20)


def _signed(raw: bytes) -> bytes:
    for key in KEYS:
        raw = dkim.sign(raw, key.selector.encode(), key.domain.encode(),
                        key.private_key.encode(), signature_algorithm=key.algorithm.encode(),
                        include_headers=[b"from", b"to", b"subject", b"message-id"]) + raw
    return raw


def _results(raw: bytes) -> list[tuple[str, str, dict[str, str]]]:
    """Our field (the first of the stored bytes), parsed back with authres."""
    fields = re.findall(rb"^Authentication-Results:.*?\r\n(?![ \t])", raw,
                        re.MULTILINE | re.DOTALL | re.IGNORECASE)
    ours = [field for field in fields if re.match(rb"Authentication-Results: hamburger\.edu;",
                                                  field)]
    assert len(ours) == 1 and raw.startswith(ours[0])
    header = authres.parse(re.sub(r"\r\n[ \t]", " ", ours[0].decode()).rstrip())
    return [(result.method, result.result,
             {f"{prop.type}.{prop.name}": prop.value for prop in result.properties})
            for result in header.results]


def test_both_signatures_spf_and_dmarc_pass(mx: Mx) -> None:
    message_id = mx.send(_signed(_message("alice@crepes.fr", "signed")), "alice@crepes.fr")
    envelope, raw = mx.stored(message_id)
    results = _results(raw)
    assert ("spf", "pass", {"smtp.mailfrom": "crepes.fr"}) in results
    dkim_results = {(props["header.a"], result) for method, result, props in results
                    if method == "dkim" and props["header.d"] == "crepes.fr"}
    assert dkim_results == {("rsa-sha256", "pass"), ("ed25519-sha256", "pass")}
    assert ("dmarc", "pass", {"header.from": "crepes.fr", "policy.dmarc": "reject"}) in results
    # Then our trace field, then the message as it came.
    assert raw.split(b"\r\n\r\n")[0].count(b"\r\nReceived: from mail.crepes.fr") == 1
    assert envelope.verdict is not None and envelope.verdict.dmarc is not None
    assert envelope.verdict.dmarc.result is Result.PASS
    assert mx.file(message_id) == INBOX


def test_a_body_altered_after_signing_fails_dkim(mx: Mx) -> None:
    signed = _signed(_message("alice@crepes.fr", "altered"))
    altered = signed.replace(b"Saturday", b"Sunday", 1)
    # MAIL FROM aligns (SPF passes), so DMARC still passes and the message is taken.
    message_id = mx.send(altered, "alice@crepes.fr")
    results = _results(mx.stored(message_id)[1])
    assert [result for method, result, _ in results if method == "dkim"] == ["fail", "fail"]
    assert ("dmarc", "pass") in [(method, result) for method, result, _ in results]


def test_spf_fails_for_a_sender_whose_domain_forbids_us(mx: Mx) -> None:
    message_id = mx.send(_message("someone@nodmarc.example", "spf fail"),
                         "bounce@spoofed.example")
    envelope, raw = mx.stored(message_id)
    assert ("spf", "fail", {"smtp.mailfrom": "spoofed.example"}) in _results(raw)
    assert envelope.verdict is not None and envelope.verdict.spf.result is Result.FAIL
    assert mx.file(message_id) == INBOX  # no DMARC record: nothing to enforce


def test_p_reject_without_alignment_is_refused_at_the_end_of_data(mx: Mx) -> None:
    swaks = shutil.which("swaks")
    if swaks is None:
        pytest.skip("swaks is not installed (make system-packages)")
    before = len(mx.store.objects)
    run = subprocess.run(
        [swaks, "--server", "127.0.0.1", "--port", str(mx.edge.mx_port), "--ehlo",
         "laptop.test", "--from", "bounce@spoofed.example", "--to", BOB,
         "--header", "From: The CEO <ceo@crepes.fr>", "--header", "Subject: wire money"],
        capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert re.search(r"<\*\* 550 5\.7\.26 ", run.stdout), run.stdout
    assert len(mx.store.objects) == before  # nothing stored: refused in the conversation


def test_p_quarantine_failing_is_filed_into_junk_once(mx: Mx) -> None:
    message_id = mx.send(_message("news@waffles.be", "quarantined"), "bounce@spoofed.example")
    envelope, _ = mx.stored(message_id)
    assert envelope.verdict is not None and envelope.verdict.junk
    assert mx.file(message_id) == JUNK
    assert mx.file(message_id) == JUNK  # filing again changes nothing
    junk = mx.mailboxes.list_folder(BOB, JUNK, 50, None).messages
    assert [copy.message_id for copy in junk].count(message_id) == 1
    inbox = mx.mailboxes.list_folder(BOB, INBOX, 50, None).messages
    assert message_id not in [copy.message_id for copy in inbox]


def test_a_spoof_of_a_hosted_domain_goes_to_junk_or_is_refused(mx: Mx) -> None:
    message_id = mx.send(_message("ceo@hamburger.edu", "from ourselves"),
                         "ceo@hamburger.edu")
    envelope, raw = mx.stored(message_id)
    assert envelope.verdict is not None and envelope.verdict.claims_hosted_domain
    assert ("dmarc", "fail") in [(method, result) for method, result, _ in _results(raw)]
    assert mx.file(message_id) == JUNK
    with pytest.raises(smtplib.SMTPDataError) as refused:  # burger.edu publishes p=reject
        mx.send(_message("ceo@burger.edu", "from our other domain"), "x@crepes.fr")
    assert refused.value.smtp_code == 550 and refused.value.smtp_error.startswith(b"5.7.26")


def test_an_incoming_field_claiming_our_id_is_replaced_by_ours(mx: Mx) -> None:
    forged = (b"Authentication-Results: Hamburger.EDU; dkim=pass header.d=crepes.fr;\r\n"
              b"\tdmarc=pass header.from=crepes.fr\r\n"
              b"Authentication-Results: (relay) hamburger.edu; spf=pass\r\n"
              b"Authentication-Results: relay.example; spf=pass smtp.mailfrom=x.example\r\n")
    message_id = mx.send(forged + _message("someone@nodmarc.example", "forged results"),
                         "bounce@spoofed.example")
    raw = mx.stored(message_id)[1]
    header = raw.split(b"\r\n\r\n")[0]
    assert b"dkim=pass header.d=crepes.fr" not in header
    assert b"(relay) hamburger.edu" not in header
    assert b"Authentication-Results: relay.example; spf=pass" in header
    assert ("spf", "fail", {"smtp.mailfrom": "spoofed.example"}) in _results(raw)


def _greeting_seconds(port: int) -> float:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        assert client.makefile("rb").readline().startswith(b"220 ")
    return time.perf_counter() - started


@pytest.mark.parametrize("behaviour", ["drop", "servfail"])
def test_dns_faults_are_temperror_and_the_message_is_still_filed(behaviour: str) -> None:
    with BrokenDns(behaviour) as broken, _mx(broken.address) as mx:
        sent: dict[str, str] = {}
        sender = threading.Thread(target=lambda: sent.update(id=mx.send(
            _signed(_message("alice@crepes.fr", f"dns {behaviour}")), "alice@crepes.fr")))
        sender.start()
        # While that message's lookups stall, another client is greeted at once.
        while broken.queries == 0 and sender.is_alive():
            time.sleep(0.01)
        greeting = _greeting_seconds(mx.edge.mx_port)
        sender.join(timeout=30)
        print(f"DNS {behaviour}: greeting {greeting * 1000:.1f} ms during the stall")
        assert greeting < 0.5
        envelope, raw = mx.stored(sent["id"])
        results = _results(raw)
        assert {(method, result) for method, result, _ in results} == {
            ("spf", "temperror"), ("dkim", "temperror"), ("dmarc", "temperror")}
        assert envelope.verdict is not None and not envelope.verdict.junk
        assert mx.file(sent["id"]) == INBOX


def test_a_key_published_after_a_failed_lookup_counts_once_no_such_record_is_forgotten(
) -> None:
    # The verifier's resolver keeps answers for their TTL, and "no such record" for a
    # short while only (NEGATIVE_ANSWER_SECONDS; half a second here).
    zone = _zone()
    for key in KEYS:
        del zone.txt[key.record_name]
    with Dnsmasq(zone) as dns:
        verifier = InboundVerifier.from_environ({"MAILPIPE_DNS": dns.address}, OURS, HOSTED,
                                                negative_seconds=0.5)
        store = InMemoryMessageStore()
        with running_edge(store=store, hosted=tuple(HOSTED.names), verifier=verifier) as edge:
            mx = Mx(edge, store, InMemoryMailboxRepository(), InMemoryRawReferences())
            signed = _signed(_message("alice@crepes.fr", "early"))
            before = _results(mx.stored(mx.send(signed, "alice@crepes.fr"))[1])
            dns.publish(_zone())
            cached = _results(mx.stored(mx.send(signed, "alice@crepes.fr"))[1])
            time.sleep(0.6)
            after = _results(mx.stored(mx.send(signed, "alice@crepes.fr"))[1])
    assert [result for method, result, _ in before if method == "dkim"] == ["permerror"] * 2
    assert [result for method, result, _ in cached if method == "dkim"] == ["permerror"] * 2
    assert [result for method, result, _ in after if method == "dkim"] == ["pass"] * 2


class _FaultyDns:
    """A resolver with a fault of ours in it (not a DNS failure): every lookup raises."""

    async def txt(self, name: str) -> list[str]:
        raise RuntimeError("a bug, not DNS")

    a = aaaa = ptr = txt

    async def mx(self, name: str) -> list[tuple[int, str]]:
        raise RuntimeError("a bug, not DNS")


class _FaultyDomains:
    """Our hosted domains, with a fault of ours in reading them."""

    @property
    def names(self) -> frozenset[str]:
        raise RuntimeError("a bug, not DNS")


@pytest.mark.parametrize("fault", ["lookups", "outside them"])
def test_a_fault_in_verification_loses_nothing_and_believes_nothing(fault: str) -> None:
    # A lookup that raises is a method that could not finish (temperror); a fault outside
    # them leaves the message unverified, our field saying so (RFC 8601 "none").
    verifier = (InboundVerifier(_FaultyDns(), HOSTED, OURS, budget=4 * LOOKUP_SECONDS)
                if fault == "lookups" else
                InboundVerifier(_FaultyDns(), _FaultyDomains(), OURS))  # type: ignore[arg-type]
    store = InMemoryMessageStore()
    references = InMemoryRawReferences()
    with running_edge(store=store, hosted=tuple(HOSTED.names), verifier=verifier) as edge:
        mx = Mx(edge, store, InMemoryMailboxRepository(references), references)
        forged = b"Authentication-Results: hamburger.edu; dmarc=pass header.from=crepes.fr\r\n"
        message_id = mx.send(forged + _signed(_message("alice@crepes.fr", "faulty")),
                             "alice@crepes.fr")
        envelope, raw = mx.stored(message_id)
        assert mx.file(message_id) == INBOX
    assert forged not in raw
    if fault == "lookups":
        assert {(method, result) for method, result, _ in _results(raw)} == {
            ("spf", "temperror"), ("dkim", "temperror"), ("dmarc", "temperror")}
        assert envelope.verdict is not None and not envelope.verdict.junk
    else:
        assert raw.startswith(b"Authentication-Results: hamburger.edu; none\r\nReceived: ")
        assert envelope.verdict is None
