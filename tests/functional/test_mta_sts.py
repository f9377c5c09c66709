"""MTA-STS (RFC 8461) in direct delivery, against real peers on loopback: the `_mta-sts`
TXT records and the policy hosts' addresses in dnsmasq, the policies over HTTPS from a
server whose certificate a test CA signed (MAILPIPE_MTA_STS_CA_BUNDLE's role), receiving
MTAs (aiosmtpd) with STARTTLS and the MX name's certificate, an untrusted one, or none;
the policies cached in the template's table in moto.

Direct delivery refuses loopback next hops found in DNS, so the delivery here is wired with
hops that carry the MX names, as DNS gives them, and an SMTP client that connects them to
loopback as it does operator-named hops: in this wiring (LoopbackPool), not in the client.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mailcore.adapters.aws.dynamodb_mta_sts import DynamoPolicyCache
from mailcore.adapters.dns_resolver import DnsServer, sync_resolver
from mailcore.adapters.memory.ledger import InMemoryDeliveryLedger
from mailcore.adapters.memory.raw_references import InMemoryRawReferences
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.adapters.mta_sts_source import HttpsPolicySource, PolicyUnavailable
from mailcore.adapters.smtp_client import SmtpClientPool
from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.delivery_status import RecipientState, RecipientStatus
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.next_hop import NextHop
from mailcore.domain.retry import RetryPolicy
from mailcore.services.delivery import deliver_job
from mailcore.services.mta_sts import TransportSecurity
from mailpipe.local.provision import provision
from tests.conftest import REGION, ROOT
from tests.dns_support import BrokenDns, Dnsmasq, Zone
from tests.mta_sts_support import PolicyServer, Receiver, Served, TestCa

# Every domain's policy host and the MX names are on loopback; each test has its own
# destination domain, so the shared table's cache does not carry from one to another.
DOMAINS = ("hamburger.edu", "crepes.fr", "refetch.test", "down.test", "fetch.test")
ENFORCE = "version: STSv1\r\nmode: enforce\r\nmx: mx.{0}\r\nmx: *.mx.{0}\r\nmax_age: 86400\r\n"
RAW = b"From: alice@example.org\r\nSubject: sts\r\n\r\nhello\r\n"


def _zone(ids: dict[str, str]) -> Zone:
    zone = Zone()
    for domain in DOMAINS:
        zone.add_txt(f"_mta-sts.{domain}", f"v=STSv1; id={ids.get(domain, '1')};")
        zone.a[f"mta-sts.{domain}"] = ["127.0.0.1"]
    return zone


@dataclass
class Peers:
    ca: TestCa
    dns: Dnsmasq
    web: PolicyServer
    good: Receiver  # STARTTLS, a certificate for mx.<domain> from the test CA
    untrusted: Receiver  # STARTTLS, a certificate for the MX names from another CA
    plain: Receiver  # no STARTTLS
    evil: Receiver  # an MX no policy allows
    table: str
    deliver_environment: dict[str, str]


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    folder = tmp_path_factory.mktemp("mta-sts")
    ca, other = TestCa(folder), TestCa(folder, "another CA")
    mx_names = [name for domain in DOMAINS for name in (f"mx.{domain}", f"a.mx.{domain}")]
    policies = {f"mta-sts.{domain}": ENFORCE.format(domain) for domain in DOMAINS}
    policies["mta-sts.crepes.fr"] = ENFORCE.format("crepes.fr").replace("enforce", "testing")
    receivers = [Receiver(ca.server_context(*mx_names)), Receiver(other.server_context(*mx_names)),
                 Receiver(None), Receiver(ca.server_context("mx.evil.example"))]
    with pytest.MonkeyPatch.context() as env, mock_aws(), Dnsmasq(_zone({})) as dns, \
            PolicyServer(ca.server_context(*policies), policies) as web:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": REGION}.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        stack = provision(ROOT, "sts", {"HostedDomains": "example.org"},
                          boto3.session.Session(region_name=REGION), None, REGION)
        for receiver in receivers:
            receiver.start()
        try:
            yield Peers(ca, dns, web, *receivers, table=stack.outputs["MailboxTableName"],
                        deliver_environment=stack.functions["DeliverMailFunction"].environment)
        finally:
            for receiver in receivers:
                receiver.stop()


class LoopbackPool(SmtpClientPool):
    """Connects every hop to loopback, whatever its name: the test's receivers."""

    def _address(self, hop: NextHop) -> str:
        return "127.0.0.1"


class Hops:
    def __init__(self, *hops: NextHop) -> None:
        self.hops = list(hops)

    def resolve(self, domain: str) -> list[NextHop]:
        return self.hops


def _transport(peers: Peers, web: PolicyServer | None = None) -> TransportSecurity:
    """A warm deliver function's MTA-STS: its own memory, the shared table."""
    source = HttpsPolicySource(sync_resolver(DnsServer.parse(peers.dns.address)),
                               peers.ca.client_context(), port=(web or peers.web).port,
                               public_only=False)
    return TransportSecurity(source, DynamoPolicyCache(boto3.client("dynamodb",
                                                                    region_name=REGION),
                                                       peers.table))


def _deliver(peers: Peers, domain: str, hop: tuple[str, Receiver],
             transport: TransportSecurity, named: bool = False) -> RecipientStatus:
    store, references = InMemoryMessageStore(), InMemoryRawReferences()
    key = store.put(new_message_id(), RAW, Envelope("alice@example.org", ("x",), "p", "h",
                                                    False))
    job = DeliveryJob(new_message_id(), key, "alice@example.org", domain,
                      (f"bob@{domain}",))
    references.hold(key, 1)
    pool = LoopbackPool("example.org", timeout=5, verified_tls=peers.ca.client_context())
    try:
        outcome = deliver_job(job, attempt=1, now=datetime.now(UTC), store=store,
                              hops=Hops(NextHop(hop[0], hop[1].port, operator_named=named)),
                              sender=pool, ledger=InMemoryDeliveryLedger(),
                              policy=RetryPolicy.parse("5m", "5d"), reporting_mta="example.org",
                              references=references, objects=store, transport=transport)
    finally:
        pool.close()
    [status] = outcome.statuses
    return status


def test_enforce_defers_a_non_matching_mx_without_connecting_to_it(peers):
    status = _deliver(peers, "hamburger.edu", ("mx.evil.example", peers.evil),
                      _transport(peers))
    assert status.state is RecipientState.DEFERRED
    assert status.reply == ("4.7.5 MTA-STS policy of hamburger.edu: mx.evil.example is not "
                            "an allowed MX")
    assert peers.evil.connections == 0 and peers.evil.messages == []


def test_a_hop_the_operator_named_is_no_mx_answer_and_not_subject_to_the_policy(peers):
    # An --mx override: where the operator sends the domain's mail, not what DNS said.
    before = len(peers.good.messages)
    status = _deliver(peers, "hamburger.edu", ("127.0.0.1", peers.good), _transport(peers),
                      named=True)
    assert status.state is RecipientState.DELIVERED, status.reply
    assert len(peers.good.messages) == before + 1


def test_enforce_delivers_to_a_matching_mx_over_verified_tls(peers):
    before = len(peers.good.messages)
    for name in ("mx.hamburger.edu", "a.mx.hamburger.edu"):  # the name and the wildcard
        status = _deliver(peers, "hamburger.edu", (name, peers.good), _transport(peers))
        assert status.state is RecipientState.DELIVERED, status.reply
    assert [(m.recipients, m.tls) for m in peers.good.messages[before:]] == [
        (["bob@hamburger.edu"], True)] * 2


@pytest.mark.parametrize(("receiver", "reason"), [
    ("untrusted", "certificate verify failed"), ("plain", "does not offer STARTTLS")])
def test_enforce_defers_a_matching_mx_without_valid_tls(peers, receiver, reason):
    server: Receiver = getattr(peers, receiver)
    status = _deliver(peers, "hamburger.edu", ("mx.hamburger.edu", server), _transport(peers))
    assert status.state is RecipientState.DEFERRED
    assert status.reply.startswith("4.7.5 MTA-STS policy of hamburger.edu: no valid TLS at "
                                   "mx.hamburger.edu: "), status.reply
    assert reason in status.reply
    assert server.messages == []  # never delivered in clear or to an unverified host


def test_testing_mode_delivers_as_without_a_policy_and_logs_what_it_would_defer(peers, caplog):
    # Neither an allowed MX nor TLS.
    status = _deliver(peers, "crepes.fr", ("mx.elsewhere.example", peers.plain),
                      _transport(peers))
    assert status.state is RecipientState.DELIVERED, status.reply
    assert [(m.recipients, m.tls) for m in peers.plain.messages] == [(["bob@crepes.fr"], False)]
    [logged] = [record for record in caplog.records
                if record.getMessage() == "mta-sts testing policy would defer"]
    assert logged.levelname == "WARNING"
    assert logged.reason == ("4.7.5 MTA-STS policy of crepes.fr: mx.elsewhere.example is not "
                             "an allowed MX")


def test_the_policy_is_fetched_once_per_txt_id_and_again_when_it_changes(peers):
    host, warm = "mta-sts.refetch.test", _transport(peers)
    good = ("mx.refetch.test", peers.good)
    for transport in (warm, warm, _transport(peers)):  # twice warm, then a cold instance
        assert _deliver(peers, "refetch.test", good, transport).state is RecipientState.DELIVERED
    assert peers.web.fetches(host) == 1

    # GIVEN a new policy that no longer allows the MX, announced by a new TXT id
    peers.web.policies[host] = ENFORCE.format("other.example")
    peers.dns.publish(_zone({"refetch.test": "2"}))
    try:
        status = _deliver(peers, "refetch.test", good, warm)
    finally:
        peers.dns.publish(_zone({}))
    assert peers.web.fetches(host) == 2
    assert status.state is RecipientState.DEFERRED
    assert "mx.refetch.test is not an allowed MX" in status.reply


def test_a_cached_policy_holds_while_the_policy_server_is_down(peers, tmp_path: Path):
    policies = {"mta-sts.down.test": ENFORCE.format("down.test")}
    with PolicyServer(peers.ca.server_context(*policies), policies) as web:
        assert _deliver(peers, "down.test", ("mx.down.test", peers.good),
                        _transport(peers, web)).state is RecipientState.DELIVERED
    # The server is gone and the TXT id says the policy changed: the cached one applies.
    peers.dns.publish(_zone({"down.test": "2"}))
    try:
        status = _deliver(peers, "down.test", ("mx.evil.example", peers.evil),
                          _transport(peers, web))
    finally:
        peers.dns.publish(_zone({}))
    assert web.fetches("mta-sts.down.test") == 1
    assert status.reply == "4.7.5 MTA-STS policy of down.test: mx.evil.example is not an allowed MX"
    assert peers.evil.connections == 0


@pytest.mark.parametrize(("served", "reason"), [
    (Served("", 301, location="https://mta-sts.example.org/.well-known/mta-sts.txt"),
     "HTTP 301"),  # §3.3: no redirects
    (Served(ENFORCE.format("fetch.test"), content_type="text/html"), "not text/plain"),
    (Served("mx: a.example\r\n" * 5000), "larger than 65536 bytes"),
    (None, "HTTP 404"),
    # Each line within the step's timeout (0.5 s), the whole beyond the fetch's (1 s).
    (Served(ENFORCE.format("fetch.test") * 4, drip=0.1), "not fetched in 1 s"),
])
def test_a_policy_served_otherwise_than_the_rfc_says_is_no_policy(peers, served, reason):
    policies = {"mta-sts.fetch.test": served} if served else {}
    with PolicyServer(peers.ca.server_context("mta-sts.fetch.test"), policies) as web:
        source = HttpsPolicySource(sync_resolver(DnsServer.parse(peers.dns.address)),
                                   peers.ca.client_context(), port=web.port, public_only=False,
                                   timeout=0.5)
        with pytest.raises(PolicyUnavailable, match=reason):
            source.fetch("fetch.test")
    assert web.fetches("mta-sts.fetch.test") == 1


def test_a_policy_host_with_an_untrusted_certificate_or_a_private_address_is_refused(peers):
    other = TestCa(peers.ca.folder, "untrusted CA")
    policies = {"mta-sts.hamburger.edu": ENFORCE.format("hamburger.edu")}
    with PolicyServer(other.server_context(*policies), policies) as web:
        source = HttpsPolicySource(sync_resolver(DnsServer.parse(peers.dns.address)),
                                   peers.ca.client_context(), port=web.port, public_only=False)
        with pytest.raises(PolicyUnavailable, match="certificate verify failed"):
            source.fetch("hamburger.edu")
        assert web.fetches("mta-sts.hamburger.edu") == 0
    # As deployed: the policy host's address from DNS must be public, as an MX host's.
    deployed = HttpsPolicySource(sync_resolver(DnsServer.parse(peers.dns.address)),
                                 peers.ca.client_context())
    with pytest.raises(PolicyUnavailable, match="no public address"):
        deployed.fetch("hamburger.edu")


def test_a_cached_policy_holds_when_dns_fails(peers):
    _deliver(peers, "hamburger.edu", ("mx.hamburger.edu", peers.good), _transport(peers))
    with BrokenDns("servfail") as broken:
        # A cold instance whose TXT lookup gets SERVFAIL: the table's policy applies.
        source = HttpsPolicySource(sync_resolver(DnsServer.parse(broken.address)),
                                   peers.ca.client_context(), port=peers.web.port,
                                   public_only=False)
        transport = TransportSecurity(source, DynamoPolicyCache(
            boto3.client("dynamodb", region_name=REGION), peers.table))
        status = _deliver(peers, "hamburger.edu", ("mx.evil.example", peers.evil), transport)
        assert broken.queries >= 1
    assert status.reply == ("4.7.5 MTA-STS policy of hamburger.edu: mx.evil.example is not "
                            "an allowed MX")
    assert peers.evil.connections == 0


def test_the_deliver_function_asks_the_stacks_resolver_and_trusts_the_ca_bundle(
        peers, monkeypatch):
    from mailcore import delivery_wiring, wiring
    from mailcore.config import ConfigurationError

    for name, value in peers.deliver_environment.items():
        if name.startswith("MAILPIPE_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("MAILPIPE_DELIVERY_MODE", "direct")
    monkeypatch.setenv("MAILPIPE_MTA_STS_CA_BUNDLE", str(peers.ca.bundle))
    with BrokenDns("servfail") as broken:
        monkeypatch.setenv("MAILPIPE_DNS", broken.address)
        wiring.aws_adapters.cache_clear()
        delivery_wiring.delivery_adapters.cache_clear()
        try:
            adapters = delivery_wiring.delivery_adapters()
            assert adapters.transport is not None and adapters.verified_tls is not None
            adapters.transport.policy_for("nowhere.test", datetime.now(UTC))
            assert broken.queries >= 1  # the _mta-sts TXT lookup went to MAILPIPE_DNS
            assert [dict(issuer[0] for issuer in ca["subject"])["commonName"]
                    for ca in adapters.verified_tls.get_ca_certs()] == ["mailpipe test CA"]

            monkeypatch.setenv("MAILPIPE_MTA_STS_CA_BUNDLE", str(peers.ca.folder / "absent"))
            wiring.aws_adapters.cache_clear()
            delivery_wiring.delivery_adapters.cache_clear()
            with pytest.raises(ConfigurationError, match="MAILPIPE_MTA_STS_CA_BUNDLE"):
                delivery_wiring.delivery_adapters()
        finally:
            wiring.aws_adapters.cache_clear()
            delivery_wiring.delivery_adapters.cache_clear()
