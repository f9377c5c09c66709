"""The junk filter through the mailbox API (issue 29): the verdict and the $Junk/$NotJunk
keywords in a message's detail, `junk: true|false` on PATCH, and each account's own
allow list, block list and days Junk keeps mail at /v1/junk-filter."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailcore.domain.junk import (
    MAX_ENTRY_LENGTH,
    MAX_JUNK_DAYS,
    MAX_LIST_ENTRIES,
    MIN_TRAINED_EACH,
    DecidedBy,
    JunkVerdict,
)
from mailcore.wiring import aws_adapters
from tests.conftest import load_function
from tests.functional.api_support import BOB, CAROL, call, deliver


@pytest.fixture
def api(stack):
    return load_function("serve_api")


def test_settings_are_saved_lower_case_without_repeats_and_read_back(api):
    fresh = call(api, "GET", "/v1/junk-filter")
    assert fresh.status == 200
    assert fresh.json == {"allow": [], "block": [], "junk_days": 30,
                          "trained": {"junk": 0, "not_junk": 0, "minimum": MIN_TRAINED_EACH}}

    wanted = {"allow": ["Alice@Crepes.FR", "friends.example", "alice@crepes.fr"],
              "block": [" Spam.Example "], "junk_days": 7}
    for _ in range(2):  # saving the same settings twice leaves them as they were
        saved = call(api, "PUT", "/v1/junk-filter", body=wanted)
        assert saved.status == 200, saved.body
        assert saved.json["allow"] == ["alice@crepes.fr", "friends.example"]
        assert saved.json["block"] == ["spam.example"]
        assert saved.json["junk_days"] == 7
    assert call(api, "GET", "/v1/junk-filter").json == saved.json

    emptied = call(api, "PUT", "/v1/junk-filter",
                   body={"allow": [], "block": [], "junk_days": MAX_JUNK_DAYS})
    assert (emptied.json["allow"], emptied.json["block"]) == ([], [])
    assert call(api, "GET", "/v1/junk-filter").json["junk_days"] == MAX_JUNK_DAYS


@pytest.mark.parametrize(("body", "field", "named"), [
    ({"allow": ["ok.example", "not an address"], "block": [], "junk_days": 30},
     "allow[1]", "not an address"),
    ({"allow": [], "block": ["a@b@c.example"], "junk_days": 30}, "block[0]", "a@b@c.example"),
    ({"allow": [], "block": ["nodot"], "junk_days": 30}, "block[0]", "nodot"),
    ({"allow": [], "block": [""], "junk_days": 30}, "block[0]", "block[0]"),
    ({"allow": ["x" * (MAX_ENTRY_LENGTH - 7) + "@b.example"], "block": [], "junk_days": 30},
     "allow[0]", "allow[0]"),
    ({"allow": [f"d{n}.example" for n in range(MAX_LIST_ENTRIES + 1)], "block": [],
      "junk_days": 30}, "allow", "at most"),
    ({"allow": [], "block": [], "junk_days": 0}, "junk_days", "junk_days"),
    ({"allow": [], "block": [], "junk_days": MAX_JUNK_DAYS + 1}, "junk_days", "junk_days"),
    ({"allow": [], "block": [], "junk_days": True}, "junk_days", "junk_days"),
    ({"allow": [], "block": [], "junk_days": "30"}, "junk_days", "junk_days"),
    ({"allow": "a.example", "block": [], "junk_days": 30}, "allow", "allow"),
    ({"allow": [3], "block": [], "junk_days": 30}, "allow", "allow"),
    ({"block": [], "junk_days": 30}, "allow", "allow"),
    ({"allow": [], "block": [], "junk_days": 30, "score": 1}, "score", "score"),
])
def test_a_bad_setting_is_400_naming_it_and_nothing_changes(api, body, field, named):
    good = {"allow": ["kept.example"], "block": ["junk.example"], "junk_days": 12}
    assert call(api, "PUT", "/v1/junk-filter", body=good).status == 200

    refused = call(api, "PUT", "/v1/junk-filter", body=body)

    assert refused.status == 400
    assert refused.error["code"] == "invalid_request"
    assert refused.error["field"] == field
    assert named in refused.error["message"]
    assert {key: value for key, value in call(api, "GET", "/v1/junk-filter").json.items()
            if key != "trained"} == good


def test_each_account_reads_and_changes_only_its_own_settings(api):
    call(api, "PUT", "/v1/junk-filter",
         body={"allow": ["alice@crepes.fr"], "block": ["spam.example"], "junk_days": 5})

    carol = call(api, "GET", "/v1/junk-filter", account=CAROL).json
    assert (carol["allow"], carol["block"], carol["junk_days"]) == ([], [], 30)
    call(api, "PUT", "/v1/junk-filter", account=CAROL,
         body={"allow": [], "block": ["crepes.fr"], "junk_days": 60})

    bob = call(api, "GET", "/v1/junk-filter").json
    assert (bob["allow"], bob["block"], bob["junk_days"]) == (
        ["alice@crepes.fr"], ["spam.example"], 5)
    assert call(api, "GET", "/v1/junk-filter", account=CAROL).json["block"] == ["crepes.fr"]
    assert call(api, "GET", "/v1/junk-filter", account=None).status == 401


def test_junk_true_and_false_set_one_keyword_and_remove_the_other(api):
    message_id = deliver("teach me", BOB)
    assert call(api, "GET", f"/v1/messages/{message_id}").json["junk"] is None

    for _ in range(2):
        junked = call(api, "PATCH", f"/v1/messages/{message_id}",
                      body={"junk": True, "seen": True})
        assert junked.status == 200
        assert set(junked.json["flags"]) == {"seen", "$Junk"}
    kept = call(api, "PATCH", f"/v1/messages/{message_id}", body={"junk": False})
    assert set(kept.json["flags"]) == {"seen", "$NotJunk"}
    assert set(call(api, "GET", f"/v1/messages/{message_id}").json["flags"]) == {
        "seen", "$NotJunk"}

    moved = call(api, "PATCH", f"/v1/messages/{message_id}",
                 body={"junk": True, "mailbox": "Junk"})
    assert (moved.json["mailbox"], set(moved.json["flags"])) == ("Junk", {"seen", "$Junk"})
    # A move alone teaches as well: out of Junk to the Inbox is not junk.
    back = call(api, "PATCH", f"/v1/messages/{message_id}", body={"mailbox": "Inbox"})
    assert (back.json["mailbox"], set(back.json["flags"])) == ("Inbox", {"seen", "$NotJunk"})
    bad = call(api, "PATCH", f"/v1/messages/{message_id}", body={"junk": "yes"})
    assert (bad.status, bad.error["field"]) == (400, "junk")
    assert call(api, "PATCH", f"/v1/messages/{message_id}", body={"junk": True},
                account=CAROL).status == 404


def test_the_stored_verdict_is_in_the_message_detail(api):
    message_id = deliver("cheap pills", BOB)
    verdict = JunkVerdict(junk=True, decided_by=DecidedBy.CONTENT, score=0.987,
                          reasons=("content",))
    mailboxes = aws_adapters().mailboxes
    mailboxes.update(BOB, message_id,
                     lambda message: replace(message, folder="Junk", junk_verdict=verdict))

    detail = call(api, "GET", f"/v1/messages/{message_id}").json

    assert detail["mailbox"] == "Junk"
    assert detail["junk"] == {"junk": True, "decided_by": "content", "score": 0.987,
                              "reasons": ["content"]}
