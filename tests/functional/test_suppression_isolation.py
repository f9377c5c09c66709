"""One domain's accounts see and change their own domain's suppression list only, however
the address in the path is spelled (issue 28 review)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from mailcore.adapters.aws import dynamodb_keys
from mailcore.domain.suppression import Suppression
from mailcore.wiring import aws_adapters
from tests.conftest import load_function
from tests.functional.api_support import BOB, call

SINCE = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
THEIRS = "gone@crepes.fr"


@pytest.fixture
def api(stack):  # type: ignore[no-untyped-def]
    aws_adapters().directory.create_account(BOB, "correct horse")
    aws_adapters().suppressions.add("burgers.test", Suppression(THEIRS, "550 5.1.1", SINCE))
    return load_function("serve_api")


SPELLINGS = [
    THEIRS, THEIRS.upper(), quote(THEIRS, safe=""), quote(quote(THEIRS, safe=""), safe=""),
    dynamodb_keys.suppressed_pk("burgers.test"), f"{dynamodb_keys.ADDRESS_PREFIX}gone@crepes.fr",
    f"{THEIRS}%00", f" {THEIRS} ", f"<{THEIRS}>", "gone@crepes.fr@burgers.test",
]


def test_another_domains_entry_cannot_be_removed_or_seen(api) -> None:
    for spelled in SPELLINGS:  # one stack for all: each spelling tried in turn
        call(api, "DELETE", f"/v1/suppressions/{spelled}")
        listed = call(api, "GET", "/v1/suppressions").json
        assert listed["domain"] == "hamburger.edu" and listed["suppressions"] == [], spelled
        assert list(aws_adapters().suppressions.entries("burgers.test")) == [THEIRS], spelled


def test_an_entry_added_names_the_callers_domain_only(api) -> None:
    for address in ("x@burgers.test", dynamodb_keys.suppressed_pk("burgers.test"), "a@b#c"):
        call(api, "POST", "/v1/suppressions", body={"address": address})
    assert list(aws_adapters().suppressions.entries("burgers.test")) == [THEIRS]
