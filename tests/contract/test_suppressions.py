"""The Suppressions port in memory and on AWS (moto) alike: one list per sending domain,
an entry per address whatever its case, the newer entry kept, removal said."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailcore.adapters.aws.clients import dynamodb_client
from mailcore.adapters.aws.dynamodb_suppressions import DynamoSuppressions
from mailcore.adapters.memory.suppressions import InMemorySuppressions
from mailcore.domain.suppression import Suppression
from mailcore.ports import Suppressions
from tests.contract.conftest import BACKINGS, _moto

SINCE = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
GONE = "gone@hamburger.edu"


@pytest.fixture(params=BACKINGS)
def suppressions(request: pytest.FixtureRequest) -> Suppressions:
    stack = _moto(request)
    if stack is None:
        return InMemorySuppressions()
    return DynamoSuppressions(dynamodb_client(), stack.outputs["MailboxTableName"])


def _entry(address: str, reason: str = "550 5.1.1 No such user here",
           since: datetime = SINCE) -> Suppression:
    return Suppression(address, reason, since)


def test_an_address_is_one_entry_of_its_sending_domain_s_list_whatever_its_case(
        suppressions: Suppressions):
    suppressions.add("crepes.fr", _entry("Gone@Hamburger.EDU"))
    found = suppressions.entries("crepes.fr", ["GONE@hamburger.edu", "bob@hamburger.edu"])
    assert found == {"GONE@hamburger.edu": _entry(GONE)}  # keyed as asked
    assert suppressions.entries("CREPES.fr") == {GONE: _entry(GONE)}
    assert suppressions.entries("galettes.fr", [GONE]) == {}
    assert suppressions.entries("galettes.fr") == {}


def test_adding_again_keeps_the_newer_and_removal_says_whether_it_was_there(
        suppressions: Suppressions):
    suppressions.add("crepes.fr", _entry(GONE))
    later = _entry(GONE, "550 5.1.10 Recipient address has null MX", SINCE + timedelta(days=1))
    suppressions.add("crepes.fr", later)
    suppressions.add("crepes.fr", _entry("left@hamburger.edu"))
    assert suppressions.entries("crepes.fr", [GONE]) == {GONE: later}
    assert suppressions.remove("crepes.fr", "GONE@hamburger.edu") is True
    assert suppressions.remove("crepes.fr", GONE) is False  # said twice on purpose
    assert suppressions.remove("galettes.fr", "left@hamburger.edu") is False
    assert list(suppressions.entries("crepes.fr")) == ["left@hamburger.edu"]


def test_a_long_list_is_read_whole_and_in_batches(suppressions: Suppressions):
    """More than one BatchGetItem (100 keys) and one Query page's worth of asking."""
    addresses = [f"user{number}@hamburger.edu" for number in range(130)]
    for address in addresses[::2]:
        suppressions.add("crepes.fr", _entry(address))
    assert sorted(suppressions.entries("crepes.fr", addresses)) == sorted(addresses[::2])
    assert len(suppressions.entries("crepes.fr")) == 65
