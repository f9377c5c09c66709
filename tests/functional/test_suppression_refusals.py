"""A suppressed recipient is refused where mail is submitted: at RCPT on the submission
port (550 5.1.1, saying why), with 400 by the API (send and send a draft), before anything
is stored or queued; the API shows the list and takes addresses off it."""

from __future__ import annotations

import smtplib
from datetime import UTC, datetime

import pytest

from mailcore.adapters.memory.suppressions import InMemorySuppressions
from mailcore.domain.suppression import Suppression
from mailcore.errors import StorageUnavailable
from mailcore.wiring import aws_adapters
from tests.conftest import load_function
from tests.edge_support import running_edge
from tests.functional.api_support import BOB, CAROL, call

SINCE = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
GONE = "gone@crepes.fr"
REPLY = "550 5.1.1 <gone@crepes.fr>: Recipient address rejected: User unknown"
WHY = (f"<{GONE}>: on hamburger.edu's suppression list since 2026-12-07 after \"{REPLY}\"; "
       "remove it with mailpipe suppression remove or the API")
MESSAGE = (b"From: Bob <bob@hamburger.edu>\r\nTo: zoe@elsewhere.test\r\n"
           b"Subject: out\r\n\r\nHello\r\n")


def _submission(edge) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", edge.submission_port, timeout=10)
    client.starttls(context=edge.client_tls())
    client.login(BOB, "bob-password")
    return client


def test_submission_refuses_a_suppressed_recipient_at_rcpt_and_takes_the_others():
    suppressions = InMemorySuppressions()
    suppressions.add("hamburger.edu", Suppression(GONE, REPLY, SINCE))
    with running_edge(suppressions=suppressions) as edge:
        client = _submission(edge)
        client.mail(BOB)
        assert client.rcpt(GONE.upper()) == (550, f"5.1.1 {WHY}".encode())
        assert client.rcpt("zoe@elsewhere.test")[0] == 250
        assert client.rcpt("carol@hamburger.edu")[0] == 250  # hosted: never on a list
        assert client.data(MESSAGE)[0] == 250
        client.quit()
    [key] = edge.store.message_keys()
    assert edge.store.get_envelope(key).rcpt_tos == ("zoe@elsewhere.test",
                                                     "carol@hamburger.edu")


def test_a_list_that_cannot_be_read_defers_the_recipient():
    class Unreadable(InMemorySuppressions):
        def entries(self, domain, of=None):
            raise StorageUnavailable("table down")

    with running_edge(suppressions=Unreadable()) as edge:
        client = _submission(edge)
        client.mail(BOB)
        assert client.rcpt(GONE)[:1] == (451,)
        client.quit()


@pytest.fixture
def api(stack):
    for account in (BOB, CAROL):
        aws_adapters().directory.create_account(account, "correct horse")
    aws_adapters().suppressions.add("hamburger.edu", Suppression(GONE, REPLY, SINCE))
    return load_function("serve_api")


def test_the_api_refuses_to_send_to_a_suppressed_recipient_with_400(api):
    refused = call(api, "POST", "/v1/messages", body={"to": [CAROL, f"Gone <{GONE}>"],
                                                       "text": "hi"})
    assert refused.status == 400
    assert refused.error == {"code": "suppressed", "message": WHY, "field": "to"}
    draft = call(api, "POST", "/v1/drafts", body={"to": [GONE], "text": "hi"}).json
    assert call(api, "POST", f"/v1/drafts/{draft['id']}/send").error["code"] == "suppressed"
    # Nothing was stored to send: no Sent copy, the draft still there.
    folders = {f["name"]: f["total"] for f in call(api, "GET", "/v1/mailboxes").json[
        "mailboxes"]}
    assert (folders["Sent"], folders["Drafts"]) == (0, 1)
    # Another domain's list is not hamburger.edu's.
    assert call(api, "POST", "/v1/messages", account=CAROL,
                body={"to": ["someone@crepes.fr"], "text": "hi"}).status == 202


def test_the_api_lists_adds_and_removes_entries_of_the_callers_domain(api):
    listed = call(api, "GET", "/v1/suppressions").json
    assert listed == {"domain": "hamburger.edu", "suppressions": [
        {"address": GONE, "reason": REPLY, "since": SINCE.isoformat()}]}
    added = call(api, "POST", "/v1/suppressions", body={"address": "Old@Crepes.fr"})
    assert added.status == 201
    assert (added.json["address"], added.json["reason"]) == ("old@crepes.fr",
                                                             f"added by {BOB}")
    assert call(api, "POST", "/v1/suppressions", body={"address": "not an address"}
                ).error["field"] == "address"
    assert [e["address"] for e in call(api, "GET", "/v1/suppressions", account=CAROL).json[
        "suppressions"]] == [GONE, "old@crepes.fr"]  # the domain's list, shared

    assert call(api, "DELETE", f"/v1/suppressions/{GONE}").status == 204
    again = call(api, "DELETE", f"/v1/suppressions/{GONE}")  # twice, on purpose
    assert (again.status, again.error["code"]) == (404, "not_found")
    assert call(api, "POST", "/v1/messages", body={"to": [GONE], "text": "hi"}).status == 202
