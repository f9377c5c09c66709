"""LoginThrottle, SendingLimit, RawReferences, DeliveryLedger, AccountDirectory and
DeliveryQueue: in memory and on AWS (moto) alike."""

from __future__ import annotations

import pytest

from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.delivery_status import RecipientState, RecipientStatus
from mailcore.domain.ids import message_key, new_message_id
from mailcore.errors import AuthenticationFailed, SendingLimitReached, Throttled
from mailcore.ports import DeliveryLedger, LoginThrottle, RawReferences, SendingLimit
from tests.contract.conftest import Clock, DirectorySide, QueueSide

BOB = "bob@hamburger.edu"


def test_failed_logins_lock_the_address_until_the_window_passes(
        throttle: LoginThrottle, clock: Clock) -> None:
    for _ in range(3):
        throttle.check(BOB, "192.0.2.1")
        throttle.failed(BOB, "192.0.2.1")
    for client in ("192.0.2.1", "192.0.2.99"):  # the address, from anywhere
        with pytest.raises(Throttled) as refused:
            throttle.check(BOB, client)
        assert 0 < refused.value.retry_after <= 900
    throttle.check("carol@hamburger.edu", "192.0.2.99")
    clock.now += 901
    throttle.check(BOB, "192.0.2.1")


def test_one_client_guessing_many_addresses_is_locked_out(
        throttle: LoginThrottle) -> None:
    for number in range(5):
        throttle.failed(f"user{number}@hamburger.edu", "198.51.100.7")
    with pytest.raises(Throttled):
        throttle.check("someone-else@hamburger.edu", "198.51.100.7")
    throttle.check("someone-else@hamburger.edu", "198.51.100.8")


def test_a_good_login_clears_the_addresss_failures_not_the_clients(
        throttle: LoginThrottle) -> None:
    for _ in range(3):
        throttle.failed(BOB, "192.0.2.1")
    throttle.succeeded(BOB)
    throttle.check(BOB, "192.0.2.50")
    for number in range(2):
        throttle.failed(f"x{number}@hamburger.edu", "192.0.2.1")
    with pytest.raises(Throttled):  # 3 failures before the good login, 2 after: the client's 5
        throttle.check("y@hamburger.edu", "192.0.2.1")


def test_sending_is_limited_per_account_and_hour(sending_limit: SendingLimit,
                                                 clock: Clock) -> None:
    clock.now = 1_800_000_000 - 1_800_000_000 % 3600 + 600  # ten minutes into an hour
    sending_limit.charge(BOB, 6)
    sending_limit.charge(BOB, 4)
    with pytest.raises(SendingLimitReached) as refused:
        sending_limit.charge(BOB, 1)
    assert refused.value.retry_after == 3000
    with pytest.raises(SendingLimitReached):
        sending_limit.charge("carol@hamburger.edu", 11)  # more than an hour's at once
    sending_limit.charge("carol@hamburger.edu", 10)
    clock.now += 3000
    sending_limit.charge(BOB, 10)


def test_the_last_reference_given_back_lets_the_bytes_go_once(
        references: RawReferences) -> None:
    key = message_key(new_message_id())
    assert references.hold(key, 2) is True
    assert references.hold(key, 5) is False  # a retried filing holds nothing more
    assert references.release_job(key, "crepes.fr") is False
    assert references.release_job(key, "crepes.fr") is False  # the same job again
    assert not references.released(key)
    assert references.release_job(key, "example.org") is True
    assert references.released(key)
    assert references.release_job(key, "example.net") is False  # let go once only


def test_the_ledger_records_queued_jobs_and_each_recipients_latest_status(
        ledger: DeliveryLedger) -> None:
    message_id = new_message_id()
    job = DeliveryJob(message_id, message_key(message_id), "bob@hamburger.edu", "crepes.fr",
                      ("alice@crepes.fr", "anne@crepes.fr"))
    assert not ledger.was_queued(message_id, "crepes.fr")
    ledger.record_queued(job)
    assert ledger.was_queued(message_id, "crepes.fr")
    assert not ledger.was_queued(message_id, "example.org")

    deferred = RecipientStatus("alice@crepes.fr", RecipientState.DEFERRED, 1, "451 4.3.0 later")
    bounced = RecipientStatus("anne@crepes.fr", RecipientState.BOUNCED, 1, "550 5.1.1 no")
    ledger.record(message_id, "crepes.fr", [deferred, bounced])
    delivered = RecipientStatus("alice@crepes.fr", RecipientState.DELIVERED, 2, "250 ok")
    ledger.record(message_id, "crepes.fr", [delivered])
    other = RecipientStatus("joe@example.org", RecipientState.QUEUED)
    ledger.record(message_id, "example.org", [other])

    assert ledger.statuses(message_id, "crepes.fr") == {"alice@crepes.fr": delivered,
                                                        "anne@crepes.fr": bounced}
    assert ledger.statuses_of_message(message_id) == {"alice@crepes.fr": delivered,
                                                      "anne@crepes.fr": bounced,
                                                      "joe@example.org": other}
    assert ledger.statuses(new_message_id(), "crepes.fr") == {}


def test_statuses_of_an_attempt_made_before_the_job_was_recorded_are_kept(
        ledger: DeliveryLedger) -> None:
    """A job is queued before it is recorded, so its first attempt can come first."""
    message_id = new_message_id()
    job = DeliveryJob(message_id, message_key(message_id), "bob@hamburger.edu", "crepes.fr",
                      ("alice@crepes.fr",))
    delivered = RecipientStatus("alice@crepes.fr", RecipientState.DELIVERED, 1, "250 ok")
    ledger.record(message_id, "crepes.fr", [delivered])
    ledger.record_queued(job)
    assert ledger.was_queued(message_id, "crepes.fr")
    assert ledger.statuses(message_id, "crepes.fr") == {"alice@crepes.fr": delivered}


def test_accounts_log_in_with_their_own_password_only(directory_side: DirectorySide) -> None:
    directory = directory_side.directory
    directory_side.add(BOB, "Correct-Horse-9")
    assert directory.is_account(BOB)
    assert not directory.is_account("nobody@hamburger.edu")
    token = directory.authenticate(BOB, "Correct-Horse-9")
    assert token.token and token.expires_in > 0
    for address, password in ((BOB, "wrong-Password-1"), (BOB, ""),
                              ("nobody@hamburger.edu", "Correct-Horse-9")):
        with pytest.raises(AuthenticationFailed):
            directory.authenticate(address, password)


def test_a_deferred_job_comes_back_only_after_its_wait(queue_side: QueueSide) -> None:
    message_id = new_message_id()
    job = DeliveryJob(message_id, message_key(message_id), "bob@hamburger.edu", "crepes.fr",
                      ("alice@crepes.fr",))
    queue_side.queue.send(job)
    [(received, receipt)] = queue_side.receive()
    assert received == job
    assert queue_side.receive() == []  # in flight: invisible to other consumers
    queue_side.queue.retry_later(receipt, 600)
    assert queue_side.receive() == []
    queue_side.queue.retry_later(receipt, 0)  # a retry due now
    assert [again for again, _ in queue_side.receive()] == [job]
