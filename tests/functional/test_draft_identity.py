"""Sending a draft checks the sender identity as the submission port does, whatever made
the draft: a mail client's IMAP APPEND with \\Draft, or STORE +FLAGS \\Draft on a message
it received. IMAP through imaplib and the API's handler, on the template's resources in
moto; the forgeries are the submission port's own (tests/functional/test_submission.py)."""

from __future__ import annotations

import imaplib

import boto3
import pytest

from mailcore.s3_keys import MESSAGES_PREFIX
from mailcore.wiring import aws_adapters
from tests.conftest import REGION, load_function
from tests.functional.api_support import BOB, CAROL, call, counts, deliver
from tests.functional.test_submission import FORGERIES
from tests.imap_support import running_imap

BODY = b"To: carol@hamburger.edu\r\nSubject: out\r\n\r\nHello Carol\r\n"
# Each forgery's answer: 400 for a header section the rules refuse, 403 for a From or a
# Sender that names someone else.
NOT_YOURS = {"two mailboxes in one From", "group syntax", "nested comments",
             "encoded-word address", "display name that looks like your address",
             "Sender of another", "a defect in your own From", "another account's From",
             "Resent-From of another", "Resent-Sender of another",
             "Resent-From in another case"}
DRAFT_FORGERIES = {
    **FORGERIES,
    "another account's From": b"From: Carol <carol@hamburger.edu>\r\n",
    # imaplib would turn it into CRLF: sent as it is (_append_exact). The parser that
    # prepares the draft ends a line at a lone CR, so this is two From fields.
    "second From behind a lone CR": b"From: bob@hamburger.edu\rFrom: carol@hamburger.edu\r\n",
}


@pytest.fixture
def api(stack):
    for account in (BOB, CAROL):
        aws_adapters().directory.create_account(account, "correct horse")
    return load_function("serve_api")


@pytest.fixture
def imap(stack):
    adapters = aws_adapters()
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views, store=adapters.store,
                      references=adapters.references) as running:
        yield running


def _append_exact(client: imaplib.IMAP4, folder: str, flags: str, raw: bytes) -> None:
    """APPEND with the literal as given (imaplib's append() rewrites line endings)."""
    client.literal = raw  # type: ignore[attr-defined]
    status, _ = client._simple_command("APPEND", folder, flags)  # type: ignore[attr-defined]
    assert status == "OK"


def _draft_ids(api) -> list[str]:
    reply = call(api, "GET", "/v1/mailboxes/Drafts/messages")
    return [message["id"] for message in reply.json["messages"]]


def _queued(stack) -> list[str]:
    """Every message the raw store holds: what the API's send stores is queued for filing."""
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=stack.outputs["MessageBucketName"], Prefix=MESSAGES_PREFIX)
    return [item["Key"] for item in listed.get("Contents", [])]


@pytest.mark.parametrize(("name", "headers"), DRAFT_FORGERIES.items(),
                         ids=DRAFT_FORGERIES.keys())
def test_a_draft_appended_over_imap_is_sent_only_from_your_own_address(
        api, imap, stack, name, headers):
    client = imap.logged_in(BOB)
    _append_exact(client, "Drafts", r"(\Draft \Seen)", headers + BODY)
    [draft_id] = _draft_ids(api)
    before = _queued(stack)

    refused = call(api, "POST", f"/v1/drafts/{draft_id}/send")

    expected = (403, "not_your_identity") if name in NOT_YOURS else (400, "invalid_request")
    assert (refused.status, refused.error["code"]) == expected
    assert _queued(stack) == before  # nothing stored, so nothing filed or delivered
    assert _draft_ids(api) == [draft_id]  # the draft stays, to be mended
    assert counts(api, CAROL).get("Inbox", (0, 0)) == (0, 0)


def test_a_received_message_flagged_as_a_draft_is_not_sent_as_its_author(api, imap, stack):
    deliver("from alice", BOB)  # From: alice@crepes.fr
    client = imap.logged_in(BOB)
    client.select("INBOX")
    assert client.store("1", "+FLAGS", r"(\Draft)")[0] == "OK"
    [received] = call(api, "GET", "/v1/mailboxes/Inbox/messages").json["messages"]
    before = _queued(stack)

    refused = call(api, "POST", f"/v1/drafts/{received['id']}/send")

    assert (refused.status, refused.error["code"]) == (403, "not_your_identity")
    assert _queued(stack) == before


@pytest.mark.parametrize("line_end", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_your_own_draft_appended_over_imap_is_sent(api, imap, stack, line_end):
    client = imap.logged_in(BOB)
    own = (b'From: "Bob, of Hamburger" <bob@hamburger.edu>\r\n' + BODY).replace(b"\r\n",
                                                                                 line_end)
    _append_exact(client, "Drafts", r"(\Draft)", own)
    [draft_id] = _draft_ids(api)

    sent = call(api, "POST", f"/v1/drafts/{draft_id}/send")

    assert sent.status == 202, sent.body
    assert len(_queued(stack)) == 1
    _, stored = aws_adapters().store.get_message(_queued(stack)[0])
    assert b"Hello Carol" in stored and b"<bob@hamburger.edu>" in stored
    assert _draft_ids(api) == []


def test_a_draft_appended_over_imap_then_saved_through_the_api_keeps_the_new_text(
        api, imap, stack):
    client = imap.logged_in(BOB)
    _append_exact(client, "Drafts", r"(\Draft)", b"From: bob@hamburger.edu\r\n" + BODY)
    [draft_id] = _draft_ids(api)

    saved = call(api, "PUT", f"/v1/drafts/{draft_id}", body={
        "to": [CAROL], "subject": "rewritten", "text": "The new text"})
    assert saved.status == 200, saved.body

    raw = call(api, "GET", f"/v1/messages/{draft_id}/raw")
    assert b"The new text" in raw.body and b"Hello Carol" not in raw.body
    sent = call(api, "POST", f"/v1/drafts/{draft_id}/send")
    assert sent.status == 202, sent.body
    [queued] = _queued(stack)
    _, stored = aws_adapters().store.get_message(queued)
    assert b"The new text" in stored and b"Hello Carol" not in stored
