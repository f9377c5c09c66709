"""Folders through the mailbox API: create, rename, delete, and what each refuses."""

from __future__ import annotations

import pytest

from tests.conftest import load_function
from tests.functional.api_support import BOB, call, counts, deliver

ROLE_NAMES = ["Inbox", "Sent", "Drafts", "Trash", "Junk", "Archive"]


@pytest.fixture
def api(stack):
    return load_function("serve_api")


def test_every_account_has_the_six_role_folders_before_any_mail(api):
    reply = call(api, "GET", "/v1/mailboxes", account="new@hamburger.edu")
    listed = [(f["name"], f["role"], f["total"], f["unread"]) for f in reply.json["mailboxes"]]
    assert listed == [(name, name.lower(), 0, 0) for name in ROLE_NAMES]


def test_nested_folder_is_created_listed_and_addressed_with_encoded_slash(api):
    created = call(api, "POST", "/v1/mailboxes", body={"name": "Projects/2026"})
    assert created.status == 201
    assert (created.json["name"], created.json["role"]) == ("Projects/2026", None)

    names = [f["name"] for f in call(api, "GET", "/v1/mailboxes").json["mailboxes"]]
    assert names == [*ROLE_NAMES, "Projects/2026"]
    listing = call(api, "GET", "/v1/mailboxes/Projects%2F2026/messages")
    assert (listing.status, listing.json["messages"]) == (200, [])


def test_creating_an_existing_name_is_409(api):
    call(api, "POST", "/v1/mailboxes", body={"name": "Receipts"})
    again = call(api, "POST", "/v1/mailboxes", body={"name": "Receipts"})
    assert (again.status, again.error["code"]) == (409, "conflict")


@pytest.mark.parametrize("name", ["", "a//b", "/lead", "trail/", " padded", "inbox", "TRASH",
                                  "bell\x07", "per%cent", "x" * 201])
def test_bad_folder_names_are_400_naming_the_field(api, name):
    reply = call(api, "POST", "/v1/mailboxes", body={"name": name})
    assert (reply.status, reply.error["field"]) == (400, "name")


def test_rename_moves_the_folder_with_its_messages_and_subfolders(api):
    call(api, "POST", "/v1/mailboxes", body={"name": "Work"})
    call(api, "POST", "/v1/mailboxes", body={"name": "Work/Old"})
    message_id = deliver("to file", BOB)
    call(api, "PATCH", f"/v1/messages/{message_id}", body={"mailbox": "Work"})

    renamed = call(api, "PATCH", "/v1/mailboxes/Work", body={"name": "Job"})

    assert (renamed.status, renamed.json["name"]) == (200, "Job")
    folders = counts(api)
    assert folders["Job"] == (1, 1) and "Job/Old" in folders
    assert "Work" not in folders and "Work/Old" not in folders
    listed = call(api, "GET", "/v1/mailboxes/Job/messages").json["messages"]
    assert [(m["id"], m["mailbox"]) for m in listed] == [(message_id, "Job")]
    assert call(api, "GET", f"/v1/messages/{message_id}").json["mailbox"] == "Job"
    assert call(api, "GET", "/v1/mailboxes/Work/messages").status == 404


def test_rename_onto_an_existing_name_is_409_and_changes_nothing(api):
    call(api, "POST", "/v1/mailboxes", body={"name": "A"})
    call(api, "POST", "/v1/mailboxes", body={"name": "B"})
    reply = call(api, "PATCH", "/v1/mailboxes/A", body={"name": "B"})
    assert reply.status == 409
    assert {"A", "B"} <= set(counts(api))


def test_role_folders_keep_their_names_and_cannot_be_deleted(api):
    assert call(api, "PATCH", "/v1/mailboxes/Inbox", body={"name": "Post"}).status == 400
    assert call(api, "DELETE", "/v1/mailboxes/Trash").status == 400


def test_only_an_empty_folder_is_deleted(api):
    call(api, "POST", "/v1/mailboxes", body={"name": "Keep"})
    message_id = deliver("kept", BOB)
    call(api, "PATCH", f"/v1/messages/{message_id}", body={"mailbox": "Keep"})

    refused = call(api, "DELETE", "/v1/mailboxes/Keep")
    assert (refused.status, refused.error["code"]) == (409, "conflict")

    call(api, "PATCH", f"/v1/messages/{message_id}", body={"mailbox": "Inbox"})
    assert call(api, "DELETE", "/v1/mailboxes/Keep").status == 204
    assert "Keep" not in counts(api)
    # The name is free again.
    assert call(api, "POST", "/v1/mailboxes", body={"name": "Keep"}).status == 201


def test_unknown_folder_is_404_on_every_folder_route(api):
    for method, path, body in [("PATCH", "/v1/mailboxes/Nope", {"name": "X"}),
                               ("DELETE", "/v1/mailboxes/Nope", None),
                               ("GET", "/v1/mailboxes/Nope/messages", None)]:
        assert call(api, method, path, body=body).status == 404, path


def test_folder_body_must_be_a_json_object_with_a_name(api):
    assert call(api, "POST", "/v1/mailboxes", raw_body="not json").status == 400
    assert call(api, "POST", "/v1/mailboxes", body=["Inbox"]).status == 400
    reply = call(api, "POST", "/v1/mailboxes", body={"name": 7})
    assert (reply.status, reply.error["field"]) == (400, "name")
