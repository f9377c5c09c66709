"""`mailpipe suppression list|remove` against the template's table in moto: one line per
entry, every hosted domain's list or one, and a mistake said in one line (status 1)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailcore.adapters.aws.clients import dynamodb_client
from mailcore.adapters.aws.dynamodb_suppressions import DynamoSuppressions
from mailcore.domain.suppression import Suppression
from mailpipe import cli

SINCE = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
GONE = "gone@crepes.fr"


@pytest.fixture
def lists(stack, monkeypatch) -> DynamoSuppressions:
    outputs = {**stack.outputs, "HostedDomains": "hamburger.edu,burgers.test"}
    monkeypatch.setattr(cli, "_target", lambda *_: (outputs, lambda service: dynamodb_client()))
    suppressions = DynamoSuppressions(dynamodb_client(), outputs["MailboxTableName"])
    suppressions.add("hamburger.edu", Suppression(GONE, "550 5.1.1 User unknown", SINCE))
    suppressions.add("burgers.test", Suppression(GONE, "550 5.1.10 Null MX", SINCE))
    suppressions.add("burgers.test", Suppression("left@crepes.fr", "added by a@burgers.test",
                                                 SINCE.replace(hour=8)))
    return suppressions


def _run(capsys, *arguments: str) -> tuple[int, str, str]:
    status = cli.main(["suppression", *arguments])
    out, err = capsys.readouterr()
    return status, out, err


def test_list_prints_one_line_per_entry_of_every_hosted_domain_or_one(lists, capsys):
    assert _run(capsys, "list") == (0, (
        "burgers.test left@crepes.fr 2026-12-07T08:30:00Z added by a@burgers.test\n"
        "burgers.test gone@crepes.fr 2026-12-07T09:30:00Z 550 5.1.10 Null MX\n"
        "hamburger.edu gone@crepes.fr 2026-12-07T09:30:00Z 550 5.1.1 User unknown\n"), "")
    assert _run(capsys, "list", "Hamburger.EDU")[1] == (
        "hamburger.edu gone@crepes.fr 2026-12-07T09:30:00Z 550 5.1.1 User unknown\n")
    assert _run(capsys, "list", "crepes.fr") == (
        1, "", "mailpipe: crepes.fr is not a hosted domain here (burgers.test, hamburger.edu)\n")


def test_remove_takes_the_address_off_every_list_or_one_and_says_so(lists, capsys):
    assert _run(capsys, "remove", GONE, "--domain", "burgers.test") == (
        0, f"{GONE} removed from burgers.test's suppression list\n", "")
    assert _run(capsys, "remove", GONE.upper()) == (
        0, f"{GONE} removed from hamburger.edu's suppression list\n", "")
    assert _run(capsys, "remove", GONE) == (  # twice, on purpose
        1, "", f"mailpipe: {GONE} is on no suppression list (burgers.test, hamburger.edu)\n")
    assert _run(capsys, "remove", "not an address")[0] == 1
    assert list(lists.entries("burgers.test")) == ["left@crepes.fr"]
    assert lists.entries("hamburger.edu") == {}
