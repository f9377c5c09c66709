"""A message's stored view is never one of other bytes, nor outlives its message.

A draft saved again through the API keeps its id and its key. Its old view is dropped before
the new bytes are written and the new one put after them, so a put that fails (a throttled
BatchWriteItem) leaves no view, and IMAP makes one from the new bytes; a view IMAP makes
from bytes it read earlier is kept only where the message is still there and has no view
of its size (ImapViews.put if_missing), so it never takes the place of the draft's new one,
nor outlives a message expunged meanwhile. FETCH and SEARCH both leave a view of another
size than the listing's aside. (Found by the attack review of issue 27.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailcore.adapters.aws.mailboxes.views import DynamoImapViews
from mailcore.errors import StorageUnavailable
from mailcore.wiring import aws_adapters
from tests.conftest import load_function
from tests.functional.api_support import BOB, CAROL, call
from tests.imap_support import RunningImap, running_imap


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


def _save_without_view(api, monkeypatch, draft_id: str, subject: str) -> None:  # type: ignore[no-untyped-def]
    """Save the draft again while the table refuses the view's BatchWriteItem (throttled)."""
    def refused(self: DynamoImapViews, views: object, **_: object) -> None:
        raise StorageUnavailable("keeping IMAP views failed")

    with monkeypatch.context() as patched:
        patched.setattr(DynamoImapViews, "put", refused)
        saved = call(api, "PUT", f"/v1/drafts/{draft_id}",
                     body={"to": [CAROL], "subject": subject, "text": "v1"})
    assert saved.status == 200


def test_a_same_size_draft_saved_when_its_view_cannot_be_kept_answers_its_new_text(
        api, imap: RunningImap, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    created = call(api, "POST", "/v1/drafts", body={"to": [CAROL], "subject": "Plan A",
                                                    "text": "v1"})
    draft_id = created.json["id"]
    _save_without_view(api, monkeypatch, draft_id, "Plan B")

    client = imap.logged_in()
    client.select("Drafts", readonly=True)
    _, header = client.fetch("1", "(BODY.PEEK[HEADER])")  # a ranged read of the bytes
    _, listed = client.fetch("1", "(ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    _, found_b = client.search(None, "SUBJECT", '"Plan B"')
    _, found_a = client.search(None, "SUBJECT", '"Plan A"')
    assert b"Subject: Plan B" in header[0][1]
    # What the bytes say, and what a client showing the folder is told, should agree:
    assert b"Plan B" in listed[0][0] + listed[0][1], listed
    assert found_b == [b"1"] and found_a == [b""], (found_a, found_b)
    client.logout()


def test_search_leaves_aside_a_view_of_other_bytes_than_the_listing(
        api, imap: RunningImap, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A different size, the view not kept: SEARCH answers from the new bytes."""
    created = call(api, "POST", "/v1/drafts", body={"to": [CAROL], "subject": "Plan A",
                                                    "text": "v1"})
    draft_id = created.json["id"]
    _save_without_view(api, monkeypatch, draft_id, "A longer plan, Plan Bravo")

    client = imap.logged_in()
    client.select("Drafts", readonly=True)
    _, found_old = client.search(None, "SUBJECT", '"Plan A"')
    _, found_new = client.search(None, "SUBJECT", '"Plan Bravo"')
    assert found_new == [b"1"] and found_old == [b""], (found_old, found_new)
    client.logout()


def test_a_view_made_by_imap_from_old_bytes_never_replaces_the_drafts_new_one(
        api, imap: RunningImap, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """No failure at all, only an interleaving: a draft without a view (saved before views,
    or its put failed once) is FETCHed; IMAP reads its bytes and makes their view; the API
    saves the draft again (same size) with its new view; IMAP's put of the old view lands
    last. The put is held here only to fix that order."""
    import threading

    from mailcore.adapters.aws.dynamodb_keys import imap_view_key

    created = call(api, "POST", "/v1/drafts", body={"to": [CAROL], "subject": "Plan A",
                                                    "text": "v1"})
    draft_id = created.json["id"]
    adapters = aws_adapters()
    adapters.imap_views._client.delete_item(TableName=adapters.imap_views._table,
                                            Key=imap_view_key(BOB, draft_id))
    entered, release = threading.Event(), threading.Event()
    original = DynamoImapViews.put
    calls = []

    def held(self: DynamoImapViews, views, **options):  # type: ignore[no-untyped-def]
        calls.append(len(views))
        if len(calls) == 1:  # IMAP's put of the view it made at the first FETCH
            entered.set()
            release.wait(30)
        return original(self, views, **options)

    monkeypatch.setattr(DynamoImapViews, "put", held)
    client = imap.logged_in()
    client.select("Drafts", readonly=True)
    fetching = threading.Thread(target=client.fetch, args=("1", "(ENVELOPE)"))
    fetching.start()
    assert entered.wait(30)
    saved = call(api, "PUT", f"/v1/drafts/{draft_id}",
                 body={"to": [CAROL], "subject": "Plan B", "text": "v1"})
    assert saved.status == 200
    release.set()
    fetching.join(30)
    _, header = client.fetch("1", "(BODY.PEEK[HEADER.FIELDS.NOT (X-None)])")
    _, envelope = client.fetch("1", "(ENVELOPE)")
    assert b"Subject: Plan B" in header[0][1]
    assert b'"Plan B"' in envelope[0], envelope
    client.logout()


def test_a_view_made_by_imap_is_not_kept_for_a_message_expunged_meanwhile(
        api, imap: RunningImap, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The lazy FETCH's put comes after another session expunged the message: no VIEW item
    is left (the put is conditioned on the message's item)."""
    import threading

    from mailcore.adapters.aws.dynamodb_keys import imap_view_key

    client = imap.logged_in()
    assert client.append("INBOX", None, None, b"From: a@b\r\nSubject: s\r\n\r\nx\r\n")[0] == "OK"
    adapters = aws_adapters()
    [message_id] = [m.message_id for m in adapters.mailboxes.list_folder(
        BOB, "Inbox", 10, None).messages]
    table, dynamo = adapters.imap_views._table, adapters.imap_views._client
    dynamo.delete_item(TableName=table, Key=imap_view_key(BOB, message_id))
    entered, release = threading.Event(), threading.Event()
    original = DynamoImapViews.put

    def held(self: DynamoImapViews, views, **options):  # type: ignore[no-untyped-def]
        entered.set()
        release.wait(30)
        return original(self, views, **options)

    monkeypatch.setattr(DynamoImapViews, "put", held)
    client.select("INBOX", readonly=True)
    fetching = threading.Thread(target=client.fetch, args=("1", "(ENVELOPE)"))
    fetching.start()
    assert entered.wait(30)
    other = imap.logged_in()
    other.select("INBOX")
    other.store("1", "+FLAGS", r"(\Deleted)")
    assert other.expunge()[0] == "OK"
    release.set()
    fetching.join(30)
    left = dynamo.get_item(TableName=table, Key=imap_view_key(BOB, message_id)).get("Item")
    assert left is None
