"""Which of our own deliveries' replies put a recipient on the sending domain's suppression
list (a remote server's permanent 5.1.x), and the reason and notice that come of it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailcore.adapters.memory.delivery import InMemoryNextHops, InMemorySmtpSender
from mailcore.adapters.memory.ledger import InMemoryDeliveryLedger
from mailcore.adapters.memory.raw_references import InMemoryRawReferences
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.adapters.memory.suppressions import InMemorySuppressions
from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.next_hop import RecipientReply
from mailcore.domain.retry import RetryPolicy
from mailcore.domain.suppression import Suppression, notice, suppresses
from mailcore.errors import PermanentFailure, RecipientSuppressed
from mailcore.services.delivery import deliver_job
from mailcore.services.recipients import HostedDomains
from mailcore.services.suppression import check_not_suppressed

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
RAW = b"From: alice@crepes.fr\r\nTo: x@hamburger.edu\r\nSubject: hi\r\n\r\nbody\r\n"


def _deliver(replies: dict[str, tuple[int, str]], mail_from: str = "alice@crepes.fr",
             hops: object = None) -> InMemorySuppressions:
    store, suppressions = InMemoryMessageStore(), InMemorySuppressions()
    key = store.put(new_message_id(), RAW, Envelope(mail_from, tuple(replies), "p", "h", False))
    job = DeliveryJob(new_message_id(), key, mail_from, "hamburger.edu", tuple(replies),
                      queued_at=NOW)
    references = InMemoryRawReferences()
    references.hold(key, 1)
    deliver_job(job, attempt=1, now=NOW, store=store, hops=hops or InMemoryNextHops(),
                sender=InMemorySmtpSender(replies), ledger=InMemoryDeliveryLedger(),
                policy=RetryPolicy.parse("5m", "5d"), reporting_mta="crepes.fr",
                references=references, objects=store, suppressions=suppressions)
    return suppressions


def test_a_remote_5_1_1_puts_the_recipient_on_the_senders_domains_list_with_the_reply():
    suppressions = _deliver({"gone@hamburger.edu": (550, "5.1.1 <gone@hamburger.edu>: "
                                                         "Recipient address rejected"),
                             "bob@hamburger.edu": (250, "2.0.0 Ok")})
    assert suppressions.entries("crepes.fr") == {"gone@hamburger.edu": Suppression(
        "gone@hamburger.edu",
        "550 5.1.1 <gone@hamburger.edu>: Recipient address rejected", NOW)}


@pytest.mark.parametrize("reply", [
    (450, "4.2.0 Mailbox busy"), (451, "4.1.1 Try later"),  # temporary, whatever the subject
    (550, "5.7.1 Blocked by policy"), (554, "5.7.26 DMARC"),  # not about the address
    (552, "5.2.2 Mailbox full"), (550, "No such user (no enhanced code)"),
])
def test_other_replies_add_nothing(reply: tuple[int, str]):
    assert _deliver({"x@hamburger.edu": reply}).entries("crepes.fr") == {}


def test_our_own_verdict_without_a_remote_server_adds_nothing():
    class NoMx:
        def resolve(self, domain: str) -> list:
            raise PermanentFailure("null MX")

    assert _deliver({"x@hamburger.edu": (250, "")}, hops=NoMx()).entries("crepes.fr") == {}
    assert not suppresses(RecipientReply("x@hamburger.edu", 550, "5.1.1 ours", None))


def test_a_dsn_being_delivered_suppresses_for_no_domain():
    suppressions = _deliver({"x@hamburger.edu": (550, "5.1.1 No such user")}, mail_from="")
    assert suppressions.lists == {}


def test_sending_refuses_a_remote_suppressed_recipient_and_says_why():
    suppressions = InMemorySuppressions()
    suppressions.add("crepes.fr", Suppression("gone@hamburger.edu",
                                              "550 5.1.1 No such\r\nuser \x1b[31m", NOW))
    domains = HostedDomains.of(["crepes.fr"])
    check_not_suppressed("alice@crepes.fr", ["bob@hamburger.edu", "carol@crepes.fr"], domains,
                         suppressions)
    with pytest.raises(RecipientSuppressed) as refused:
        check_not_suppressed("alice@crepes.fr", ["bob@hamburger.edu", "gone@hamburger.edu"],
                             domains, suppressions)
    assert refused.value.public == (
        "<gone@hamburger.edu>: on crepes.fr's suppression list since 2026-12-07 after "
        "\"550 5.1.1 No such user [31m\"; remove it with mailpipe suppression remove or the API")
    assert refused.value.field == "to"
    check_not_suppressed("alice@galettes.fr", ["gone@hamburger.edu"], domains, suppressions)


def test_the_notice_is_one_printable_line_short_enough_for_an_smtp_reply():
    entry = Suppression("gone@hamburger.edu", "550 5.1.1 " + "x" * 2000 + "\r\n", NOW)
    text = notice("crepes.fr", entry)
    assert text.isprintable() and text.isascii() and len("550 5.1.1 " + text) < 510
