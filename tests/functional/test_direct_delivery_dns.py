"""Direct delivery's lookups go to the stack's DNS server (MAILPIPE_DNS), not the system's:
the MX record and then the MX host's addresses. Direct delivery refuses next hops on
loopback, so the lookup is proved by what the attempt reports: the host only the test DNS
knows and the address only it gives (issue 28)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailcore import delivery_wiring
from mailcore.adapters.memory.ledger import InMemoryDeliveryLedger
from mailcore.adapters.memory.raw_references import InMemoryRawReferences
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.adapters.smtp_client import SmtpClientPool
from mailcore.config import Settings
from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.delivery_status import RecipientState, RecipientStatus
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.retry import RetryPolicy
from mailcore.services.delivery import deliver_job
from tests.dns_support import BrokenDns, Dnsmasq, Zone

RAW = b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: hi\r\n\r\nbody\r\n"
ZONE = Zone(mx={"hamburger.edu": [(10, "mx.hamburger.edu")],
                "nomail.hamburger.edu": [(0, ".")]},
            a={"mx.hamburger.edu": ["127.0.0.9"]})


def _attempt(dns_server: str, domain: str) -> RecipientStatus:
    """One delivery attempt of a message to bob@`domain`, wired as the deliver function
    wires direct delivery."""
    settings = Settings("bucket", "table", "pool", "client", ("crepes.fr",),
                        delivery_mode="direct", dns_server=dns_server)
    hops = delivery_wiring.direct_next_hops(settings)
    pool = SmtpClientPool("crepes.fr", timeout=2, addresses=hops.addresses)
    store, references = InMemoryMessageStore(), InMemoryRawReferences()
    key = store.put(new_message_id(), RAW, Envelope("alice@crepes.fr", (f"bob@{domain}",),
                                                     "p", "h", False))
    job = DeliveryJob(new_message_id(), key, "alice@crepes.fr", domain, (f"bob@{domain}",),
                      queued_at=datetime.now(UTC))
    references.hold(key, 1)
    try:
        outcome = deliver_job(job, attempt=1, now=datetime.now(UTC), store=store, hops=hops,
                              sender=pool, ledger=InMemoryDeliveryLedger(),
                              policy=RetryPolicy.parse("5m", "5d"), reporting_mta="crepes.fr",
                              references=references, objects=store)
    finally:
        pool.close()
    [status] = outcome.statuses
    return status


@pytest.fixture(scope="module")
def dns():
    with Dnsmasq(ZONE) as server:
        yield server


def test_the_mx_host_and_its_address_come_from_the_stacks_dns_server(dns):
    status = _attempt(dns.address, "hamburger.edu")
    # Only the test DNS knows mx.hamburger.edu and gives it 127.0.0.9: the attempt names
    # both, and connects to neither (a DNS-found hop on loopback is refused).
    assert status.state is RecipientState.BOUNCED
    assert status.reply.startswith("550 5.4.4")
    assert "mx.hamburger.edu has no public address (127.0.0.9)" in status.reply


@pytest.mark.parametrize(("domain", "code"), [("nowhere.hamburger.edu", "5.1.2"),
                                              ("nomail.hamburger.edu", "5.1.10")])
def test_a_domain_without_mail_bounces_at_once(dns, domain, code):
    status = _attempt(dns.address, domain)
    assert status.state is RecipientState.BOUNCED
    assert status.reply.startswith(f"550 {code} ")


@pytest.mark.parametrize("behaviour", ["servfail", "drop"])
def test_dns_that_fails_defers_delivery(behaviour, monkeypatch):
    monkeypatch.setattr(delivery_wiring, "MX_LOOKUP_SECONDS", 1.0)  # "drop" waits it out
    with BrokenDns(behaviour) as broken:
        status = _attempt(broken.address, "hamburger.edu")
    assert broken.queries > 0  # asked, not the system's resolver
    assert status.state is RecipientState.DEFERRED
    assert status.reply.startswith("4.4.3 DNS lookup for hamburger.edu failed")
