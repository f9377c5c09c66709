"""The mailbox API handler with the template's table, bucket and user pool in moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailcore.wiring import aws_adapters
from tests.conftest import load_function
from tests.functional.api_support import BOB, CAROL, call, deliver


@pytest.fixture
def api(stack):
    return load_function("serve_api")


def _deliver(subject: str, *rcpts: str, received_at: datetime | None = None) -> str:
    return deliver(subject, *rcpts, received_at=received_at)


def _call(api, method: str, path: str, account: str | None = BOB,
          query: dict[str, str] | None = None, body: dict | None = None) -> tuple[int, dict, str]:
    reply = call(api, method, path, account, query, body)
    try:
        document = reply.json
    except ValueError:
        document = {}
    return reply.status, document, reply.body.decode()


def test_inbox_lists_newest_first_in_pages_joined_by_cursor(api):
    start = datetime.now(UTC)
    ids = [_deliver(f"n{i}", BOB, received_at=start + timedelta(seconds=i)) for i in range(5)]

    status, first, _ = _call(api, "GET", "/v1/mailboxes/Inbox/messages", query={"limit": "2"})
    assert status == 200
    seen = [m["id"] for m in first["messages"]]
    cursor = first["cursor"]
    while cursor:
        _, page, _ = _call(api, "GET", "/v1/mailboxes/Inbox/messages",
                           query={"limit": "2", "cursor": cursor})
        seen += [m["id"] for m in page["messages"]]
        cursor = page["cursor"]

    assert seen == list(reversed(ids))


def test_message_and_raw_are_returned_to_their_owner(api):
    message_id = _deliver("Test Email", BOB)

    status, message, _ = _call(api, "GET", f"/v1/messages/{message_id}")
    assert status == 200
    assert (message["subject"], message["from"], message["text"]) == (
        "Test Email", "alice@crepes.fr", "body\r\n")

    status, _, raw = _call(api, "GET", f"/v1/messages/{message_id}/raw")
    assert status == 200
    assert raw.startswith("From: alice@crepes.fr") and "Subject: Test Email" in raw


def test_another_accounts_message_answers_404_on_every_route(api):
    carols = _deliver("for carol only", CAROL)

    for path in (f"/v1/messages/{carols}", f"/v1/messages/{carols}/raw"):
        status, document, _ = _call(api, "GET", path, account=BOB)
        assert status == 404
        assert document["error"]["code"] == "not_found"
    _, bobs_inbox, _ = _call(api, "GET", "/v1/mailboxes/Inbox/messages", account=BOB)
    assert bobs_inbox["messages"] == []
    assert _call(api, "GET", f"/v1/messages/{carols}", account=CAROL)[0] == 200


def test_cursor_of_another_account_is_refused(api):
    for i in range(3):
        _deliver(f"c{i}", CAROL)
    _, carols_page, _ = _call(api, "GET", "/v1/mailboxes/Inbox/messages", account=CAROL,
                              query={"limit": "1"})

    status, document, _ = _call(api, "GET", "/v1/mailboxes/Inbox/messages", account=BOB,
                                query={"cursor": carols_page["cursor"]})

    assert status == 400
    assert document["error"]["field"] == "cursor"


def test_request_without_verified_identity_is_401(api):
    status, document, _ = _call(api, "GET", "/v1/mailboxes", account=None)
    assert status == 401
    assert document["error"]["code"] == "unauthenticated"


def test_mailboxes_show_role_folders_with_counts(api):
    _deliver("one", BOB)
    _, document, _ = _call(api, "GET", "/v1/mailboxes")
    folders = {f["name"]: f for f in document["mailboxes"]}
    assert set(folders) >= {"Inbox", "Sent", "Drafts", "Trash", "Junk", "Archive"}
    assert (folders["Inbox"]["role"], folders["Inbox"]["total"], folders["Inbox"]["unread"]) == (
        "inbox", 1, 1)


@pytest.mark.parametrize("query,field", [({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"),
                                         ({"cursor": "not-a-cursor"}, "cursor")])
def test_invalid_list_parameters_are_400_naming_the_field(api, query, field):
    status, document, _ = _call(api, "GET", "/v1/mailboxes/Inbox/messages", query=query)
    assert status == 400
    assert document["error"]["field"] == field


def test_unknown_folder_is_404(api):
    assert _call(api, "GET", "/v1/mailboxes/Nope/messages")[0] == 404


def test_session_gives_a_token_for_the_right_password_only(api):
    aws_adapters().directory.create_account(BOB, "correct horse")

    status, document, _ = _call(api, "POST", "/v1/session", account=None,
                                body={"address": "Bob@Hamburger.edu", "password": "correct horse"})
    assert status == 200
    assert document["token"] and document["expires_in"] > 0

    wrong = _call(api, "POST", "/v1/session", account=None,
                  body={"address": BOB, "password": "wrong"})
    unknown = _call(api, "POST", "/v1/session", account=None,
                    body={"address": "nobody@hamburger.edu", "password": "wrong"})
    assert wrong[0] == unknown[0] == 401
    assert wrong[1] == unknown[1]  # no hint which accounts exist


def test_session_without_password_is_400(api):
    status, document, _ = _call(api, "POST", "/v1/session", account=None,
                                body={"address": BOB})
    assert (status, document["error"]["field"]) == (400, "password")


@pytest.mark.parametrize("path", ["/.well-known/autoconfig/mail/config-v1.1.xml",
                                  "/mail/config-v1.1.xml"])
def test_autoconfig_tells_a_client_where_imap_and_submission_are(api, path):
    from xml.etree import ElementTree

    reply = call(api, "GET", path, account=None, query={"emailaddress": BOB})
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/xml"
    provider = ElementTree.fromstring(reply.body).find("emailProvider")
    assert [domain.text for domain in provider.findall("domain")] == ["hamburger.edu"]
    servers = [(server.get("type"), server.findtext("port"), server.findtext("socketType"),
                server.findtext("username"))
               for server in provider if server.tag.endswith("Server")]
    # No 993 here: only a stack whose load balancer has the certificate offers it.
    assert servers == [("imap", "143", "STARTTLS", "%EMAILADDRESS%"),
                       ("smtp", "587", "STARTTLS", "%EMAILADDRESS%")]
