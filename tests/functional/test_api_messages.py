"""Messages through the mailbox API: flags, moves, deletion, attachments, search,
large bodies, and exact folder counts under concurrent changes."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import requests

from mailcore.s3_keys import message_key
from mailcore.wiring import aws_adapters
from tests.conftest import REGION, load_function
from tests.functional.api_support import BOB, CAROL, call, counts, deliver

ATTACHMENT = b"%PDF-1.4 not really\x00\xff"
MULTIPART = (
    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n"
)
MULTIPART_BODY = (
    "--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
    "--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
    "filename=\"r\u00e9sum\u00e9.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    f"{base64.b64encode(ATTACHMENT).decode()}\r\n--b1--\r\n"
)


@pytest.fixture
def api(stack):
    return load_function("serve_api")


def _object_exists(stack, key: str) -> bool:
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=stack.outputs["MessageBucketName"], Prefix=key)
    return listed.get("KeyCount", 0) > 0


def test_flags_are_set_and_cleared_and_unread_count_follows(api):
    message_id = deliver("flag me", BOB)
    assert counts(api)["Inbox"] == (1, 1)

    changed = call(api, "PATCH", f"/v1/messages/{message_id}",
                   body={"seen": True, "flagged": True})
    assert changed.status == 200
    assert set(changed.json["flags"]) == {"seen", "flagged"}
    assert counts(api)["Inbox"] == (1, 0)

    call(api, "PATCH", f"/v1/messages/{message_id}", body={"seen": False, "answered": True})
    detail = call(api, "GET", f"/v1/messages/{message_id}").json
    assert set(detail["flags"]) == {"flagged", "answered"}
    assert counts(api)["Inbox"] == (1, 1)


def test_move_changes_both_folders_counts(api):
    message_id = deliver("move me", BOB)
    moved = call(api, "PATCH", f"/v1/messages/{message_id}", body={"mailbox": "Archive"})
    assert (moved.status, moved.json["mailbox"]) == (200, "Archive")
    folders = counts(api)
    assert (folders["Inbox"], folders["Archive"]) == ((0, 0), (1, 1))
    listed = call(api, "GET", "/v1/mailboxes/Archive/messages").json["messages"]
    assert [m["id"] for m in listed] == [message_id]


@pytest.mark.parametrize("body,field", [
    ({}, "seen"), ({"seen": "yes"}, "seen"), ({"mailbox": ""}, "mailbox"),
    ({"colour": "red"}, "colour"), ({"flagged": 1}, "flagged")])
def test_invalid_changes_are_400_naming_the_field(api, body, field):
    message_id = deliver("bad change", BOB)
    reply = call(api, "PATCH", f"/v1/messages/{message_id}", body=body)
    assert (reply.status, reply.error["field"]) == (400, field)


def test_move_to_an_unknown_folder_is_404_and_changes_nothing(api):
    message_id = deliver("stay", BOB)
    assert call(api, "PATCH", f"/v1/messages/{message_id}",
                body={"mailbox": "Nowhere"}).status == 404
    assert counts(api)["Inbox"] == (1, 1)


def test_delete_moves_to_trash_then_deletes_for_good_with_the_raw_bytes(api, stack):
    message_id = deliver("bin me", BOB)
    raw_key = message_key(message_id)

    first = call(api, "DELETE", f"/v1/messages/{message_id}")
    assert first.json == {"id": message_id, "result": "moved_to_trash"}
    assert counts(api)["Trash"] == (1, 1) and counts(api)["Inbox"] == (0, 0)

    second = call(api, "DELETE", f"/v1/messages/{message_id}")
    assert second.json == {"id": message_id, "result": "deleted"}
    assert counts(api)["Trash"] == (0, 0)
    assert call(api, "GET", f"/v1/messages/{message_id}").status == 404
    assert not _object_exists(stack, raw_key)


def test_raw_bytes_stay_while_another_mailbox_holds_the_message(api, stack):
    message_id = deliver("shared", BOB, CAROL)
    for _ in range(2):
        call(api, "DELETE", f"/v1/messages/{message_id}", account=BOB)

    assert _object_exists(stack, message_key(message_id))
    raw = call(api, "GET", f"/v1/messages/{message_id}/raw", account=CAROL)
    assert raw.status == 200 and b"Subject: shared" in raw.body


def test_attachment_is_returned_decoded_with_its_type_and_name(api):
    message_id = deliver("with file", BOB, extra_headers=MULTIPART, body=MULTIPART_BODY)
    detail = call(api, "GET", f"/v1/messages/{message_id}").json
    assert detail["has_attachments"] and detail["text"] == "see attached"
    assert detail["attachments"] == [{"index": 0, "filename": "r\u00e9sum\u00e9.pdf",
                                      "content_type": "application/pdf",
                                      "size": len(ATTACHMENT), "content_id": None}]

    part = call(api, "GET", f"/v1/messages/{message_id}/attachments/0")
    assert part.status == 200
    assert part.body == ATTACHMENT
    assert part.headers["content-type"] == "application/pdf"
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf" in part.headers["content-disposition"]
    for index in ("1", "x", "-1", "\u00b2", "\u0663", "\u00bd"):
        assert call(api, "GET", f"/v1/messages/{message_id}/attachments/{index}").status == 404


@pytest.mark.parametrize("limit", ["\u00b2", "\u0663", "\u00bd", "\uff11", "0", "x", ""])
def test_a_limit_that_is_not_an_ascii_number_is_400(api, limit):
    reply = call(api, "GET", "/v1/mailboxes/Inbox/messages", query={"limit": limit})
    if limit == "":
        assert reply.status == 200  # absent: the default page
    else:
        assert (reply.status, reply.error["field"]) == (400, "limit")


def test_bodies_over_the_response_limit_are_a_redirect_to_a_short_lived_link(api):
    big = base64.b64encode(b"\x01" * (4 * 1024 * 1024 + 10)).decode()
    body = MULTIPART_BODY.replace(base64.b64encode(ATTACHMENT).decode(), big)
    message_id = deliver("big", BOB, extra_headers=MULTIPART, body=body)
    expected = {"raw": None, "attachments/0": b"\x01" * (4 * 1024 * 1024 + 10)}

    for suffix, content in expected.items():
        path = f"/v1/messages/{message_id}/{suffix}"
        reply = call(api, "GET", path)
        assert reply.status == 302, path
        location = reply.headers["location"]
        assert "X-Amz-Signature=" in location and "X-Amz-Expires=300" in location
        fetched = requests.get(location, timeout=10)
        assert fetched.status_code == 200, path
        if content is None:
            assert fetched.content.startswith(b"From: alice@crepes.fr")
        else:
            assert fetched.content == content


def test_search_matches_subject_sender_and_snippet_and_pages(api):
    start = datetime.now(UTC)
    ids = [deliver(f"Invoice {i}", BOB, received_at=start + timedelta(seconds=i))
           for i in range(5)]
    deliver("Holiday plans", BOB, body="the INVOICE is attached too")
    deliver("Invoice for carol", CAROL)

    hits = call(api, "GET", "/v1/search", query={"q": "invoice"}).json
    assert len(hits["messages"]) == 6  # five subjects and one snippet, Bob's only
    assert {m["id"] for m in hits["messages"]} >= set(ids)

    seen, cursor = [], None
    while True:
        query = {"q": "invoice", "mailbox": "Inbox", "limit": "2"}
        if cursor:
            query["cursor"] = cursor
        page = call(api, "GET", "/v1/search", query=query).json
        seen += [m["id"] for m in page["messages"]]
        cursor = page["cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 6

    assert call(api, "GET", "/v1/search", query={"q": "alice@crepes"}).json["messages"]
    assert call(api, "GET", "/v1/search", query={"q": "nothing like it"}).json["messages"] == []
    assert call(api, "GET", "/v1/search", query={"q": "x", "mailbox": "Nope"}).status == 404
    missing = call(api, "GET", "/v1/search", query={})
    assert (missing.status, missing.error["field"]) == (400, "q")


@pytest.mark.concurrent
def test_parallel_flag_and_move_changes_keep_counts_exact(api):
    """Eight threads flag, unflag and move the same twenty messages at once; the
    counters must equal what a listing of each folder finds."""
    ids = [deliver(f"busy {i}", BOB) for i in range(20)]
    call(api, "POST", "/v1/mailboxes", body={"name": "Busy"})
    changes = [({"seen": True}), ({"seen": False}), ({"mailbox": "Busy"}),
               ({"mailbox": "Inbox", "seen": True}), ({"mailbox": "Archive"})]

    def work(n: int) -> list[int]:
        """The statuses of one change, tried again on 503 as a client would: every change
        of one folder meets on its counters, and one that loses that race eight times in
        a row is answered 503 "try again" (transactions.ATTEMPTS), as under AWS's own
        TransactionConflict; how often depends on the machine's speed, never on luck
        with the counts."""
        message_id = ids[n % len(ids)]
        statuses = []
        for _ in range(5):
            statuses.append(call(api, "PATCH", f"/v1/messages/{message_id}",
                                 body=changes[n % len(changes)]).status)
            if statuses[-1] != 503:
                break
        return statuses

    with ThreadPoolExecutor(max_workers=8) as pool:
        tries = list(pool.map(work, range(200)))
    assert {statuses[-1] for statuses in tries} == {200}
    assert {status for statuses in tries for status in statuses} <= {200, 503}

    folders = counts(api)
    for name in ("Inbox", "Busy", "Archive"):
        listed = call(api, "GET", f"/v1/mailboxes/{name}/messages",
                      query={"limit": "100"}).json["messages"]
        unread = sum("seen" not in m["flags"] for m in listed)
        assert folders[name] == (len(listed), unread), name
    assert sum(folders[name][0] for name in ("Inbox", "Busy", "Archive")) == 20


def test_another_accounts_ids_answer_404_on_every_message_route(api):
    carols = deliver("private", CAROL)
    aws_adapters().mailboxes.create_folder(CAROL, "Secret")
    routes = [
        ("GET", f"/v1/messages/{carols}", None),
        ("PATCH", f"/v1/messages/{carols}", {"seen": True}),
        ("DELETE", f"/v1/messages/{carols}", None),
        ("GET", f"/v1/messages/{carols}/raw", None),
        ("GET", f"/v1/messages/{carols}/attachments/0", None),
        ("GET", f"/v1/messages/{carols}/delivery", None),
        ("PUT", f"/v1/drafts/{carols}", {"to": [BOB]}),
        ("POST", f"/v1/drafts/{carols}/send", None),
        ("POST", "/v1/messages", {"to": [CAROL], "in_reply_to": carols}),
        ("POST", "/v1/messages", {"to": [CAROL], "forward_of": carols}),
        ("GET", "/v1/mailboxes/Secret/messages", None),
        ("PATCH", "/v1/mailboxes/Secret", {"name": "Mine"}),
        ("DELETE", "/v1/mailboxes/Secret", None),
        ("GET", "/v1/search", None),
    ]
    made_up = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    for method, path, body in routes:
        query = {"q": "private", "mailbox": "Secret"} if path == "/v1/search" else None
        reply = call(api, method, path, account=BOB, body=body, query=query)
        assert (reply.status, reply.error["code"]) == (404, "not_found"), (method, path)
        made_up_path = path.replace(carols, made_up)
        if made_up_path != path:
            other = call(api, method, made_up_path, account=BOB, body=body, query=query)
            assert other.status == 404 and other.json == reply.json, (method, path)
    # Carol's mailbox is untouched.
    assert counts(api, CAROL)["Inbox"] == (1, 1)
    assert call(api, "GET", "/v1/search", account=BOB, query={"q": "private"}).json[
        "messages"] == []
