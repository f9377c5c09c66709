"""LoginThrottle, SendingLimit, RawReferences, DeliveryLedger, AccountDirectory (and its
AccountListing) and DeliveryQueue: in memory and on AWS (moto) alike."""

from __future__ import annotations

import threading

import pytest

from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.delivery_status import RecipientState, RecipientStatus
from mailcore.domain.ids import new_message_id
from mailcore.errors import (
    AuthenticationFailed,
    LoginsInFlight,
    SendingLimitReached,
    Throttled,
)
from mailcore.ports import (
    DeliveryLedger,
    LoginAttempt,
    LoginThrottle,
    RawReferences,
    SendingLimit,
)
from mailcore.s3_keys import message_key
from tests.contract.conftest import Clock, DirectorySide, QueueSide

BOB = "bob@hamburger.edu"


def _fail(throttle: LoginThrottle, address: str, client: str) -> None:
    throttle.failed(throttle.reserve(address, client))


def test_failed_logins_lock_the_address_until_the_window_passes(
        throttle: LoginThrottle, clock: Clock) -> None:
    for _ in range(3):
        _fail(throttle, BOB, "192.0.2.1")
    for client in ("192.0.2.1", "192.0.2.99"):  # the address, from anywhere
        with pytest.raises(Throttled) as refused:
            throttle.reserve(BOB, client)
        assert not isinstance(refused.value, LoginsInFlight)
        assert 0 < refused.value.retry_after <= 900
    throttle.abandoned(throttle.reserve("carol@hamburger.edu", "192.0.2.99"))
    clock.now += 901
    throttle.succeeded(throttle.reserve(BOB, "192.0.2.1"))


def test_one_client_guessing_many_addresses_is_locked_out(
        throttle: LoginThrottle) -> None:
    for number in range(5):
        _fail(throttle, f"user{number}@hamburger.edu", "198.51.100.7")
    with pytest.raises(Throttled):
        throttle.reserve("someone-else@hamburger.edu", "198.51.100.7")
    throttle.reserve("someone-else@hamburger.edu", "198.51.100.8")


def test_a_good_login_clears_the_addresss_failures_not_the_clients(
        throttle: LoginThrottle) -> None:
    for _ in range(2):
        _fail(throttle, BOB, "192.0.2.1")
    throttle.succeeded(throttle.reserve(BOB, "192.0.2.1"))
    for _ in range(2):  # the address's count starts again
        _fail(throttle, BOB, "192.0.2.50")
    throttle.abandoned(throttle.reserve(BOB, "192.0.2.50"))
    for number in range(3):
        _fail(throttle, f"x{number}@hamburger.edu", "192.0.2.1")
    with pytest.raises(Throttled):  # 2 failures before the good login, 3 after: the client's 5
        throttle.reserve("y@hamburger.edu", "192.0.2.1")


def test_attempts_are_counted_before_they_are_checked(throttle: LoginThrottle) -> None:
    """Three limit the address: a fourth attempt while three are being checked waits
    (LoginsInFlight), a wrong one keeps its place, a right one gives its place back."""
    checking = [throttle.reserve(BOB, f"192.0.2.{number}") for number in range(3)]
    with pytest.raises(LoginsInFlight):
        throttle.reserve(BOB, "192.0.2.9")
    throttle.succeeded(checking.pop())
    checking.append(throttle.reserve(BOB, "192.0.2.9"))  # its place was given back
    throttle.abandoned(checking.pop())  # the directory could not be asked: given back
    fourth = throttle.reserve(BOB, "192.0.2.9")
    for attempt in [*checking, fourth]:
        throttle.failed(attempt)
    with pytest.raises(Throttled) as refused:
        throttle.reserve(BOB, "192.0.2.10")
    assert not isinstance(refused.value, LoginsInFlight)  # failures now, not in flight


def test_a_client_refused_gives_the_addresss_reservation_back(
        throttle: LoginThrottle) -> None:
    for number in range(5):
        _fail(throttle, f"user{number}@hamburger.edu", "198.51.100.7")
    for _ in range(4):  # each refused by the client's counter, none kept by Bob's
        with pytest.raises(Throttled):
            throttle.reserve(BOB, "198.51.100.7")
    for _ in range(3):
        throttle.reserve(BOB, "203.0.113.1")


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


def test_every_account_is_listed_once_a_page_at_a_time(directory_side: DirectorySide) -> None:
    added = ["bob@hamburger.edu", "carol@hamburger.edu", "dave@crepes.fr"]
    for address in added:
        directory_side.add(address, "Correct-Horse-9")
    listed: list[str] = []
    cursor = None
    for _ in range(len(added) + 1):
        page = directory_side.listing.list_accounts(2, cursor)
        assert len(page.accounts) <= 2
        listed += page.accounts
        cursor = page.cursor
        if cursor is None:
            break
    assert sorted(listed) == added


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


# Threads call AWS at once: moto's server with the local runtime's atomic requests
# (tests/conftest.py, `stack`), as moto in process is not safe across threads.
@pytest.mark.concurrent
def test_simultaneous_reservations_take_no_more_than_the_limit(
        throttle: LoginThrottle) -> None:
    """Twenty at once, for one address (limit 3): three get through, whatever the
    interleaving (one conditional increment each, not a read then a write)."""
    start = threading.Barrier(20)
    taken: list[LoginAttempt] = []
    refused: list[Exception] = []

    def one(number: int) -> None:
        start.wait()
        try:
            taken.append(throttle.reserve(BOB, f"192.0.2.{number}"))
        except Throttled as exc:
            refused.append(exc)

    threads = [threading.Thread(target=one, args=(number,)) for number in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert (len(taken), len(refused)) == (3, 17)
    assert all(isinstance(exc, LoginsInFlight) for exc in refused)  # waiting, not failed
