"""Every writer of a message's bytes writes its IMAP view: APPEND and COPY through a real IMAP
client, drafts saved (again) through the API, mail the API sends once filed; on DynamoDB."""

from __future__ import annotations

import re
from collections.abc import Iterator

import boto3
import pytest

from mailcore.adapters.aws.dynamodb_keys import imap_view_key
from mailcore.domain.mailbox import DRAFTS, SENT
from mailcore.imap_view.view import make_view
from mailcore.wiring import aws_adapters
from tests.conftest import REGION, load_function
from tests.functional.api_support import BOB, CAROL, call, file_submitted
from tests.imap_support import RunningImap, running_imap

RAW = (b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: kept by a client\r\n"
       b"Date: Mon, 7 Dec 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\n"
       b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n'
       b'\r\nhello\r\n--b\r\nContent-Type: application/pdf; name="a.pdf"\r\n'
       b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n")


@pytest.fixture
def api(stack):  # type: ignore[no-untyped-def]
    for account in (BOB, CAROL):
        aws_adapters().directory.create_account(account, "correct horse")
    return load_function("serve_api")


@pytest.fixture
def imap(api) -> Iterator[RunningImap]:  # type: ignore[no-untyped-def]
    adapters = aws_adapters()
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views,
                      store=adapters.store, references=adapters.references) as running:
        yield running


def _ids(folder: str, account: str = BOB) -> list[str]:
    return [message.message_id for message in aws_adapters().mailboxes.list_folder(
        account, folder, 100, None).messages]


def _views(account: str, ids: list[str]) -> dict[str, object]:
    return dict(aws_adapters().imap_views.get_many(account, ids))


def test_append_and_copy_over_imap_leave_the_view_of_the_bytes(imap: RunningImap) -> None:
    client = imap.logged_in()
    status, answer = client.append("INBOX", r"(\Seen)", None, RAW)
    assert status == "OK", answer
    [appended] = _ids("Inbox")
    assert _views(BOB, [appended]) == {appended: make_view(RAW)}

    client.select("INBOX")
    assert client.copy("1", "Archive")[0] == "OK"
    [copied] = _ids("Archive")
    assert copied != appended
    assert _views(BOB, [appended, copied]) == dict.fromkeys([appended, copied], make_view(RAW))
    client.logout()


def test_a_copy_of_a_message_without_a_view_is_left_to_its_first_fetch(
        imap: RunningImap) -> None:
    """The source filed before views (its view item deleted here): COPY reads no bytes to
    make one, and works."""
    client = imap.logged_in()
    assert client.append("INBOX", None, None, RAW)[0] == "OK"
    [source] = _ids("Inbox")
    adapters = aws_adapters()
    boto3.client("dynamodb", region_name=REGION).delete_item(  # as stored before views
        TableName=adapters.settings.table, Key=imap_view_key(BOB, source))
    client.select("INBOX")
    assert client.copy("1", "Archive")[0] == "OK"
    [copied] = _ids("Archive")
    assert _views(BOB, [source, copied]) == {}
    client.logout()


def test_a_draft_saved_twice_through_the_api_has_the_view_of_its_latest_bytes(
        api, imap: RunningImap) -> None:  # type: ignore[no-untyped-def]
    created = call(api, "POST", "/v1/drafts", body={"to": [CAROL], "subject": "Plan",
                                                    "text": "v1"})
    draft_id = created.json["id"]
    adapters = aws_adapters()

    def draft_bytes() -> bytes:
        return adapters.store.get_raw(adapters.mailboxes.get(BOB, draft_id).raw_key)

    first = draft_bytes()
    assert _views(BOB, [draft_id]) == {draft_id: make_view(first)}
    updated = call(api, "PUT", f"/v1/drafts/{draft_id}", body={
        "to": [CAROL], "subject": "Plan B, with a longer subject", "text": "v2 " * 100})
    assert updated.status == 200
    latest = draft_bytes()
    assert latest != first
    assert _views(BOB, [draft_id]) == {draft_id: make_view(latest)}

    # IMAP copies a draft with bytes of its own, and their view.
    client = imap.logged_in()
    client.select("Drafts")
    assert client.copy("1", "Archive")[0] == "OK"
    [copied] = _ids("Archive")
    copied_bytes = adapters.store.get_raw(adapters.mailboxes.get(BOB, copied).raw_key)
    assert copied_bytes == latest
    assert _views(BOB, [copied]) == {copied: make_view(latest)}
    client.logout()

    # Sent: the draft and its view go; the Sent copy, once filed, has the sent bytes' view.
    sent = call(api, "POST", f"/v1/drafts/{draft_id}/send")
    assert sent.status == 202
    assert _views(BOB, [draft_id]) == {}
    file_submitted(sent.json["id"])
    [sent_copy] = _ids(SENT)
    sent_bytes = adapters.store.get_raw(adapters.mailboxes.get(BOB, sent_copy).raw_key)
    assert _views(BOB, [sent_copy]) == {sent_copy: make_view(sent_bytes)}
    [received] = _ids("Inbox", CAROL)
    assert _views(CAROL, [received]) == {received: make_view(sent_bytes)}


def test_a_draft_an_imap_client_made_and_the_api_rewrote_has_its_new_bytes_view(
        api, imap: RunningImap) -> None:  # type: ignore[no-untyped-def]
    client = imap.logged_in()
    assert client.append("Drafts", r"(\Draft \Seen)", None, RAW.replace(
        b"From: alice@crepes.fr", b"From: bob@hamburger.edu"))[0] == "OK"
    client.logout()
    [draft_id] = _ids(DRAFTS)
    rewritten = call(api, "PUT", f"/v1/drafts/{draft_id}", body={"to": [CAROL],
                                                                 "text": "new text"})
    assert rewritten.status == 200
    adapters = aws_adapters()
    raw = adapters.store.get_raw(adapters.mailboxes.get(BOB, draft_id).raw_key)
    assert re.search(rb"new text", raw)
    assert _views(BOB, [draft_id]) == {draft_id: make_view(raw)}
