"""Writing mail through the mailbox API: send, reply, forward, drafts, uploads,
delivery status and login throttling."""

from __future__ import annotations

import base64
import email
import json
from email import policy

import pytest

from mailcore.s3_keys import message_key
from mailcore.wiring import aws_adapters
from tests.conftest import load_function
from tests.functional.api_support import BOB, CAROL, call, counts, deliver, file_submitted


@pytest.fixture
def api(stack):
    for account in (BOB, CAROL):
        aws_adapters().directory.create_account(account, "correct horse")
    return load_function("serve_api")


def _stored(stack, message_id: str) -> tuple[email.message.EmailMessage, dict]:
    envelope, raw = aws_adapters().store.get_message(message_key(message_id))
    return (email.message_from_bytes(raw, policy=policy.default),
            json.loads(envelope.to_json()))


def test_sent_message_is_well_formed_and_routed_by_envelope_with_bcc_hidden(api, stack):
    reply = call(api, "POST", "/v1/messages", body={
        "to": ["Carol Ü <carol@hamburger.edu>"], "cc": ["dave@crepes.fr"],
        "bcc": ["eve@crepes.fr"], "subject": "Crêpes ce soir ?", "text": "À 20 h.",
        "html": "<p>À 20 h.</p>",
        "attachments": [{"filename": "menu.txt", "content_type": "text/plain",
                         "content": base64.b64encode(b"galettes").decode()}]})
    assert reply.status == 202
    message_id = reply.json["id"]

    message, envelope = _stored(stack, message_id)
    assert message["From"] == BOB
    assert message["Subject"] == "Crêpes ce soir ?"
    assert reply.json["message_id"] == message["Message-ID"]
    assert message["Date"] and message["MIME-Version"] == "1.0"
    assert message.get("Bcc") is None
    assert message.get_body(("plain",)).get_content().strip() == "À 20 h."
    assert [part.get_filename() for part in message.iter_attachments()] == ["menu.txt"]
    assert envelope["mail_from"] == BOB and envelope["submitted_by"] == BOB
    assert sorted(envelope["rcpt_tos"]) == ["carol@hamburger.edu", "dave@crepes.fr",
                                            "eve@crepes.fr"]

    file_submitted(message_id)
    assert counts(api, CAROL)["Inbox"] == (1, 1)
    sent = call(api, "GET", "/v1/mailboxes/Sent/messages").json["messages"]
    assert [m["id"] for m in sent] == [message_id]
    status = call(api, "GET", f"/v1/messages/{message_id}/delivery").json
    states = {r["recipient"]: r["state"] for r in status["recipients"]}
    assert states == {"carol@hamburger.edu": "delivered", "dave@crepes.fr": "queued",
                      "eve@crepes.fr": "queued"}
    # Carol received it; its envelope (with Bob's Bcc) is not hers to see.
    assert call(api, "GET", f"/v1/messages/{message_id}/delivery",
                account=CAROL).json["recipients"] == []


def test_reply_and_forward_thread_as_mail_clients_expect(api, stack):
    original = deliver("Lunch", BOB, extra_headers="References: <first@crepes.fr>\r\n")

    replied = call(api, "POST", "/v1/messages", body={"to": ["alice@crepes.fr"],
                                                      "text": "Yes!",
                                                      "in_reply_to": original})
    assert replied.status == 202
    answer, _ = _stored(stack, replied.json["id"])
    assert answer["Subject"] == "Re: Lunch"
    assert answer["In-Reply-To"] == "<Lunch@crepes.fr>"
    assert answer["References"].split() == ["<first@crepes.fr>", "<Lunch@crepes.fr>"]
    assert "answered" in call(api, "GET", f"/v1/messages/{original}").json["flags"]

    forwarded = call(api, "POST", "/v1/messages", body={"to": ["carol@hamburger.edu"],
                                                        "text": "FYI",
                                                        "forward_of": original})
    message, _ = _stored(stack, forwarded.json["id"])
    assert message["Subject"] == "Fwd: Lunch"
    [attached] = list(message.iter_attachments())
    assert attached.get_content_type() == "message/rfc822"
    assert attached.get_content()["Subject"] == "Lunch"

    # The thread id ties the reply to the original once both are in a mailbox.
    file_submitted(replied.json["id"])
    thread = {m["id"]: m["thread_id"] for m in
              call(api, "GET", "/v1/search", query={"q": "lunch"}).json["messages"]}
    assert thread[original] == thread[replied.json["id"]]


@pytest.mark.parametrize("body,status,field", [
    ({"to": ["not an address"]}, 400, "to[0]"),
    ({"to": ["a@b.example, c@d.example"]}, 400, "to[0]"),
    ({"cc": ["x@crepes.fr\r\nBcc: y@crepes.fr"]}, 400, "cc[0]"),
    ({"text": "nobody"}, 400, "to"),
    ({"to": ["nobody@hamburger.edu"]}, 400, "to"),
    ({"to": [CAROL], "subject": "two\r\nlines"}, 400, "subject"),
    ({"to": [CAROL], "attachments": [{"filename": "a", "content": "!!"}]}, 400,
     "attachments[0].content"),
    ({"to": [CAROL], "attachments": [{"filename": "a", "upload_id": "nope"}]}, 400,
     "attachments[0].upload_id"),
    ({"to": [CAROL], "sender": "boss@hamburger.edu"}, 400, "sender"),
])
def test_invalid_messages_are_refused_naming_the_field(api, body, status, field):
    reply = call(api, "POST", "/v1/messages", body=body)
    assert (reply.status, reply.error.get("field")) == (status, field)


def test_a_message_over_the_size_limit_is_413(api):
    chunk = base64.b64encode(b"\0" * (9 * 1024 * 1024)).decode()
    uploads = []
    for _ in range(3):
        upload = call(api, "POST", "/v1/uploads", body={"content_type": "application/zip"}).json
        aws_adapters().store.put_object(aws_adapters().store.upload_key(BOB, upload["upload_id"]),
                                        base64.b64decode(chunk), "application/zip")
        uploads.append({"filename": "part.zip", "upload_id": upload["upload_id"]})
    reply = call(api, "POST", "/v1/messages", body={"to": [CAROL], "attachments": uploads})
    assert (reply.status, reply.error["code"]) == (413, "too_large")


def test_upload_is_attached_by_its_id_and_only_by_its_owner(api, stack):
    upload = call(api, "POST", "/v1/uploads", body={"filename": "big.bin",
                                                    "content_type": "application/zip"})
    assert upload.status == 201 and upload.json["method"] == "POST"
    # The signed policy that S3 enforces: this key, this type, at most max_size bytes.
    policy_document = json.loads(base64.b64decode(upload.json["fields"]["policy"]))
    conditions = policy_document["conditions"]
    assert ["content-length-range", 1, upload.json["max_size"]] in conditions
    assert {"Content-Type": "application/zip"} in conditions
    store = aws_adapters().store
    key = store.upload_key(BOB, upload.json["upload_id"])
    assert {"key": key} in conditions
    store.put_object(key, b"PK\x03\x04", "application/zip")
    attachment = {"filename": "big.zip", "content_type": "application/zip",
                  "upload_id": upload.json["upload_id"]}

    stolen = call(api, "POST", "/v1/messages", account=CAROL,
                  body={"to": [BOB], "attachments": [attachment]})
    assert (stolen.status, stolen.error["field"]) == (400, "attachments[0].upload_id")

    sent = call(api, "POST", "/v1/messages", body={"to": [CAROL], "attachments": [attachment]})
    message, _ = _stored(stack, sent.json["id"])
    [part] = list(message.iter_attachments())
    assert part.get_content() == b"PK\x03\x04"


def test_draft_is_saved_updated_and_sent_leaving_drafts(api, stack):
    created = call(api, "POST", "/v1/drafts", body={"to": [CAROL], "bcc": ["eve@crepes.fr"],
                                                    "subject": "Plan", "text": "v1"})
    assert created.status == 201
    draft_id = created.json["id"]
    assert created.json["mailbox"] == "Drafts" and "draft" in created.json["flags"]
    assert counts(api)["Drafts"] == (1, 0)

    updated = call(api, "PUT", f"/v1/drafts/{draft_id}", body={
        "to": [CAROL], "bcc": ["eve@crepes.fr"], "subject": "Plan B", "text": "v2"})
    assert (updated.status, updated.json["subject"]) == (200, "Plan B")
    assert counts(api)["Drafts"] == (1, 0)
    assert call(api, "GET", f"/v1/messages/{draft_id}").json["text"].strip() == "v2"

    sent = call(api, "POST", f"/v1/drafts/{draft_id}/send")
    assert sent.status == 202
    message, envelope = _stored(stack, sent.json["id"])
    assert message["Subject"] == "Plan B" and message.get("Bcc") is None
    assert sorted(envelope["rcpt_tos"]) == [CAROL, "eve@crepes.fr"]
    assert counts(api)["Drafts"] == (0, 0)
    assert call(api, "GET", f"/v1/messages/{draft_id}").status == 404
    assert call(api, "POST", f"/v1/drafts/{draft_id}/send").status == 404


def test_a_received_message_is_not_a_draft(api):
    message_id = deliver("not mine to send", BOB)
    assert call(api, "PUT", f"/v1/drafts/{message_id}", body={"to": [CAROL]}).status == 404
    assert call(api, "POST", f"/v1/drafts/{message_id}/send").status == 404


def test_repeated_login_failures_are_throttled_alike_for_unknown_addresses(api):
    for number, address in enumerate((BOB, "nobody@hamburger.edu")):
        answers = [call(api, "POST", "/v1/session", account=None, client_ip=f"192.0.2.{number}",
                        body={"address": address, "password": "guess"}) for _ in range(6)]
        assert [a.status for a in answers] == [401] * 5 + [429]
        assert int(answers[-1].headers["retry-after"]) > 0
    # While throttled, even the right password is refused; another account is not affected.
    assert call(api, "POST", "/v1/session", account=None,
                body={"address": BOB, "password": "correct horse"}).status == 429
    assert call(api, "POST", "/v1/session", account=None,
                body={"address": CAROL, "password": "correct horse"}).status == 200


def test_one_client_guessing_at_many_addresses_is_throttled(api):
    guesses = [call(api, "POST", "/v1/session", account=None, client_ip="198.51.100.66",
                    body={"address": f"user{number}@hamburger.edu", "password": "guess"})
               for number in range(11)]
    assert [answer.status for answer in guesses] == [401] * 10 + [429]
    # Carol, from elsewhere, logs in.
    assert call(api, "POST", "/v1/session", account=None, client_ip="203.0.113.5",
                body={"address": CAROL, "password": "correct horse"}).status == 200


def test_sending_beyond_the_hourly_limit_is_429_and_counts_nothing(api, monkeypatch):
    monkeypatch.setenv("MAILPIPE_SENDING_LIMIT_PER_HOUR", "3")
    aws_adapters.cache_clear()
    assert call(api, "POST", "/v1/messages", body={
        "to": [CAROL, "zoe@crepes.fr"], "text": "two"}).status == 202
    refused = call(api, "POST", "/v1/messages", body={
        "to": [CAROL, "zoe@crepes.fr"], "text": "two more"})
    assert (refused.status, refused.error["code"]) == (429, "throttled")
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    assert call(api, "POST", "/v1/messages", body={"to": [CAROL], "text": "one"}).status == 202
    assert call(api, "POST", "/v1/messages", body={"to": [CAROL], "text": "one"}).status == 429


@pytest.mark.parametrize("decoded", ["line\r\nInjected: yes", "bare\nlf", "tab\there",
                                     "nul\x00byte"])
def test_a_reply_to_a_subject_with_control_characters_is_sent(api, stack, decoded):
    encoded = f"=?utf-8?b?{base64.b64encode(decoded.encode()).decode()}?="
    message_id = deliver("placeholder", BOB, extra_headers="")
    raw = aws_adapters().store.get_raw(aws_adapters().mailboxes.get(BOB, message_id).raw_key)
    hostile = raw.replace(b"Subject: placeholder", b"Subject: " + encoded.encode())
    hostile_id = _deliver_raw(hostile)

    reply = call(api, "POST", "/v1/messages", body={"to": [CAROL], "text": "ok",
                                                    "in_reply_to": hostile_id})

    assert reply.status == 202, reply.body
    sent, _ = _stored(stack, reply.json["id"])
    assert sent.get("Injected") is None
    assert sent["Subject"].startswith("Re: ")


def _deliver_raw(raw: bytes) -> str:
    from datetime import UTC, datetime

    from mailcore.domain.envelope import Envelope
    from mailcore.domain.ids import new_message_id
    from mailcore.services.filing import file_inbound

    adapters = aws_adapters()
    key = adapters.store.put(new_message_id(), raw, Envelope(
        mail_from="alice@crepes.fr", rcpt_tos=(BOB,), peer="192.0.2.1", helo="crepes.fr",
        tls=False, received_at=datetime.now(UTC)))
    return file_inbound(key, adapters.store, adapters.mailboxes, adapters.domains,
                        references=adapters.references, views=adapters.imap_views).message_id


def test_a_draft_opened_again_keeps_its_bcc_and_stays_in_its_conversation(api, stack):
    original = deliver("the question", BOB)
    created = call(api, "POST", "/v1/drafts", body={
        "to": [CAROL], "bcc": ["eve@crepes.fr"], "text": "v1", "in_reply_to": original})
    draft_id = created.json["id"]
    detail = call(api, "GET", f"/v1/messages/{draft_id}").json
    assert detail["bcc"] == ["eve@crepes.fr"]
    assert detail["subject"] == "Re: the question"

    # What a user agent that opened the draft again sends: its fields, no in_reply_to.
    call(api, "PUT", f"/v1/drafts/{draft_id}", body={
        "to": detail["to"], "bcc": detail["bcc"], "subject": detail["subject"], "text": "v2"})
    again = call(api, "GET", f"/v1/messages/{draft_id}").json
    assert (again["in_reply_to"], again["references"]) == (
        detail["in_reply_to"], detail["references"])
    assert again["thread_id"] == detail["thread_id"] and again["bcc"] == ["eve@crepes.fr"]
    assert call(api, "GET", f"/v1/messages/{original}").json["bcc"] == []
