"""Outbound DKIM: what an account sends, on the submission port or through the API, is
stored once with one Authentication-Results field and two DKIM signatures (rsa-sha256,
ed25519-sha256) that dkimpy and OpenDKIM both verify against the published records; and
the keys custom resource adds keys without ever dropping one."""

from __future__ import annotations

import json
import re
import smtplib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import boto3
import pytest

from mailcore.adapters.aws import clients
from mailcore.adapters.aws.secrets_signing_keys import (
    KEYS_SECONDS,
    RETRY_SECONDS,
    SecretsSigningKeys,
    read_keys,
    write_keys,
)
from mailcore.adapters.memory.signing_keys import InMemorySigningKeys
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.authentication.signing_keys import SigningKey, keys_for_domain, new_keys
from mailcore.s3_keys import message_key
from mailcore.wiring import aws_adapters
from tests.conftest import _reset_adapter_caches, load_function
from tests.dkim_support import (
    OpenDkim,
    dkimpy_verifies,
    header_fields,
    published,
    signature_tags,
    with_one_signature,
)
from tests.edge_support import running_edge
from tests.functional.api_support import BOB, CAROL, Context, call, file_submitted

MESSAGE = (b"From: Bob <bob@hamburger.edu>\r\nTo: zoe@elsewhere.test\r\n"
           b"Subject: signed\r\nDate: Mon, 07 Dec 2026 20:00:00 +0000\r\n"
           b"Message-ID: <signed.1@hamburger.edu>\r\n\r\nHello Zoe\r\n")


@pytest.fixture(scope="module")
def keys() -> list[SigningKey]:
    return new_keys("hamburger.edu", datetime.now(UTC).date())


@pytest.fixture(scope="module")
def opendkim(keys: list[SigningKey]) -> Iterator[OpenDkim]:
    with OpenDkim(published(keys)) as running:
        yield running


def _assert_signed_once(raw: bytes, account: str, authserv_id: str, keys: list[SigningKey],
                        opendkim: OpenDkim) -> None:
    names = [name for name, _ in header_fields(raw)]
    # Stored order: ours (A-R, signatures, Received), then the message's own.
    assert names[:4] == ["authentication-results", "dkim-signature", "dkim-signature",
                         "received"]
    assert names.count("dkim-signature") == 2
    assert [field for name, field in header_fields(raw) if name == "authentication-results"
            and field.lower().startswith(f"authentication-results: {authserv_id}".encode())
            ] == [header_fields(raw)[0][1]]  # one field of ours
    assert header_fields(raw)[0][1] == (
        f"Authentication-Results: {authserv_id}; auth=pass smtp.auth={account}\r\n".encode())
    rsa, ed25519 = signature_tags(raw)
    selectors = {key.algorithm: key.selector for key in keys_for_domain(keys, "hamburger.edu")}
    assert (rsa["a"], rsa["s"]) == ("rsa-sha256", selectors["rsa-sha256"])
    assert (ed25519["a"], ed25519["s"]) == ("ed25519-sha256", selectors["ed25519-sha256"])
    for tags in (rsa, ed25519):
        assert (tags["d"], tags["c"]) == ("hamburger.edu", "relaxed/relaxed")
        signed = tags["h"].replace(" ", "").split(":")
        assert signed.count("from") == 2  # From oversigned
        assert {"to", "subject", "date", "message-id"} <= set(signed)
        assert "received" not in signed
    for index in (0, 1):
        assert dkimpy_verifies(raw, opendkim.dns.address, index), index
        # OpenDKIM passes a message when one signature passes: each is judged alone.
        alone = with_one_signature(raw, index)
        verdict = opendkim.verify(alone)
        assert verdict.returncode == 0, verdict.stderr
        changed = opendkim.verify(alone.replace(b"\r\n\r\n", b"\r\n\r\nP.S. changed\r\n", 1))
        assert changed.returncode != 0 and b"Bad signature" in changed.stderr
        assert not dkimpy_verifies(alone.replace(b"\r\n\r\n", b"\r\n\r\nx", 1),
                                   opendkim.dns.address, 0)


def _submit(edge: Any, message: bytes = MESSAGE) -> None:
    with smtplib.SMTP("127.0.0.1", edge.submission_port, timeout=10) as client:
        client.starttls(context=edge.client_tls())
        client.login(BOB, "bob-password")
        assert client.sendmail(BOB, ["zoe@elsewhere.test"], message) == {}


def test_a_message_submitted_without_date_or_message_id_gets_them_signed(keys, opendkim):
    # RFC 5322 requires a Date; OpenDKIM calls a message without one a syntax error, and
    # receivers junk it. The submission port adds both (RFC 6409 §8.2, §8.3), signed.
    bare = (b"From: Bob <bob@hamburger.edu>\r\nTo: zoe@elsewhere.test\r\n"
            b"Subject: no date\r\n\r\nHello Zoe\r\n")
    store = InMemoryMessageStore()
    with running_edge(store, signing_keys=InMemorySigningKeys(keys)) as edge:
        _submit(edge, bare)
        _submit(edge)  # one with both keeps its own
    raws = [store.get_raw(key) for key in store.message_keys()]
    [added] = [raw for raw in raws if raw.endswith(bare)]
    [kept] = [raw for raw in raws if raw.endswith(MESSAGE)]
    names = [name for name, _ in header_fields(added)]
    assert names.count("date") == names.count("message-id") == 1
    assert re.search(rb"\r\nMessage-ID: <[^@>]+@hamburger\.edu>\r\n", added)
    assert [name for name, _ in header_fields(kept)].count("date") == 1
    _assert_signed_once(added, BOB, "hamburger.edu", keys, opendkim)


def test_mail_submitted_on_the_submission_port_is_stored_signed_and_verifies(keys, opendkim):
    store = InMemoryMessageStore()
    with running_edge(store, signing_keys=InMemorySigningKeys(keys)) as edge:
        _submit(edge)
    [key] = store.message_keys()
    raw = store.get_raw(key)
    assert raw.endswith(MESSAGE)  # the message itself as it was sent
    _assert_signed_once(raw, BOB, "hamburger.edu", keys, opendkim)


def test_a_submitted_field_claiming_to_be_our_results_is_removed_before_signing(
        keys, opendkim):
    store = InMemoryMessageStore()
    theirs = b"Authentication-Results: other.example; dkim=pass header.d=bank.example\r\n"
    forged = b"Authentication-Results: HAMBURGER.EDU; dmarc=pass header.from=bank.example\r\n"
    with running_edge(store, signing_keys=InMemorySigningKeys(keys)) as edge:
        _submit(edge, forged + theirs + MESSAGE)
    [key] = store.message_keys()
    raw = store.get_raw(key)
    assert raw.endswith(theirs + MESSAGE) and forged not in raw  # another's is kept
    _assert_signed_once(raw, BOB, "hamburger.edu", keys, opendkim)


def test_a_domain_without_keys_sends_unsigned_with_its_authentication_results():
    store = InMemoryMessageStore()
    with running_edge(store, signing_keys=InMemorySigningKeys(
            new_keys("crepes.fr", datetime.now(UTC).date()))) as edge:
        _submit(edge)
    [key] = store.message_keys()
    names = [name for name, _ in header_fields(store.get_raw(key))]
    assert names[:2] == ["authentication-results", "received"]
    assert "dkim-signature" not in names


@pytest.fixture
def api_with_keys(stack, monkeypatch, keys) -> Any:
    """The API with the template's keys secret (in moto) holding `keys`."""
    secret = stack.outputs["DkimKeysSecretArn"]
    clients.secrets_client.cache_clear()
    write_keys(clients.secrets_client(), secret, keys)
    monkeypatch.setenv("MAILPIPE_DKIM_SECRET", secret)
    _reset_adapter_caches()
    for account in (BOB, CAROL):
        aws_adapters().directory.create_account(account, "correct horse")
    yield load_function("serve_api")
    clients.secrets_client.cache_clear()


def test_mail_sent_through_the_api_is_stored_signed_and_verifies(api_with_keys, keys,
                                                                   opendkim):
    api = api_with_keys
    sent = call(api, "POST", "/v1/messages", body={
        "to": ["zoe@elsewhere.test", CAROL], "subject": "signed", "text": "Hello Zoe"})
    assert sent.status == 202
    raw = aws_adapters().store.get_raw(message_key(sent.json["id"]))
    _assert_signed_once(raw, BOB, aws_adapters().settings.hostname, keys, opendkim)
    # One object: the Sent copy and Carol's copy are the bytes that were signed.
    file_submitted(sent.json["id"])
    assert call(api, "GET", f"/v1/messages/{sent.json['id']}/raw").body == raw
    assert call(api, "GET", f"/v1/messages/{sent.json['id']}/raw", account=CAROL).body == raw

    draft = call(api, "POST", "/v1/drafts", body={"to": ["zoe@elsewhere.test"],
                                                  "subject": "drafted", "text": "Later"})
    from_draft = call(api, "POST", f"/v1/drafts/{draft.json['id']}/send")
    assert from_draft.status == 202
    _assert_signed_once(aws_adapters().store.get_raw(message_key(from_draft.json["id"])),
                        BOB, aws_adapters().settings.hostname, keys, opendkim)


# ---- the keys custom resource (Custom::DkimKeys) ---------------------------------------------
class _CloudFormation(BaseHTTPRequestHandler):
    answers: ClassVar[list[dict[str, Any]]] = []

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        assert self.headers.get("Content-Type", "") == ""  # as the presigned URL is signed
        type(self).answers.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _CloudFormation.answers = []
    server = HTTPServer(("127.0.0.1", 0), _CloudFormation)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/cloudformation-response", \
        _CloudFormation.answers
    server.shutdown()
    server.server_close()


def _event(kind: str, url: str, secret: str, domains: str) -> dict[str, Any]:
    return {"RequestType": kind, "ResponseURL": url,
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/mailpipe/1",
            "RequestId": f"request-{kind}", "LogicalResourceId": "DkimKeys",
            "ResourceType": "Custom::DkimKeys",
            **({"PhysicalResourceId": f"dkim-keys:{secret}"} if kind != "Create" else {}),
            "ResourceProperties": {"ServiceToken": "arn:aws:lambda:function:make",
                                   "SecretId": secret, "Domains": domains}}


def test_the_keys_custom_resource_adds_keys_and_never_drops_one(stack, response_url):
    url, answers = response_url
    secret = stack.outputs["DkimKeysSecretArn"]  # the template's secret, in moto
    clients.secrets_client.cache_clear()
    make = load_function("make_dkim_keys")
    try:
        make.lambda_handler(_event("Create", url, secret, "hamburger.edu"), Context())
        first = read_keys(clients.secrets_client(), secret)
        assert sorted((key.domain, key.algorithm) for key in first) == [
            ("hamburger.edu", "ed25519-sha256"), ("hamburger.edu", "rsa-sha256")]
        # The same deploy again, then one that adds a domain: the first keys stay.
        make.lambda_handler(_event("Create", url, secret, "hamburger.edu"), Context())
        assert read_keys(clients.secrets_client(), secret) == first
        make.lambda_handler(_event("Update", url, secret, "hamburger.edu, Crepes.fr"),
                            Context())
        after = read_keys(clients.secrets_client(), secret)
        assert after[:2] == first and {key.domain for key in after[2:]} == {"crepes.fr"}
        make.lambda_handler(_event("Delete", url, secret, "hamburger.edu"), Context())
        assert read_keys(clients.secrets_client(), secret) == after
        make.lambda_handler(_event("Update", url, "no-such-secret", "x.test"), Context())
    finally:
        clients.secrets_client.cache_clear()
    assert [(answer["Status"], answer["RequestId"]) for answer in answers] == [
        ("SUCCESS", "request-Create"), ("SUCCESS", "request-Create"),
        ("SUCCESS", "request-Update"), ("SUCCESS", "request-Delete"),
        ("FAILED", "request-Update")]
    assert answers[0]["Data"] == {"Keys": 2} and answers[2]["Data"] == {"Keys": 4}
    assert all(answer["LogicalResourceId"] == "DkimKeys" and answer["StackId"]
               and answer["PhysicalResourceId"] for answer in answers)
    assert "see the function's log" in answers[-1]["Reason"]


def test_the_keys_secret_is_read_once_then_again_after_a_few_minutes(stack, keys):
    secret = stack.outputs["DkimKeysSecretArn"]
    client = boto3.client("secretsmanager", region_name="us-east-1")
    reads: list[str] = []
    client.meta.events.register("before-call.secrets-manager.GetSecretValue",
                                lambda **_: reads.append("read"))
    now = [1000.0]
    signing_keys = SecretsSigningKeys(client, secret, clock=lambda: now[0])
    assert signing_keys.for_domain("hamburger.edu") == []  # the template's "{}"
    write_keys(client, secret, keys)
    now[0] += RETRY_SECONDS  # a domain without keys asks again soon: keys being written
    assert signing_keys.for_domain("hamburger.edu") == keys_for_domain(keys, "hamburger.edu")
    for _ in range(50):
        signing_keys.for_domain("hamburger.edu")
    assert len(reads) == 2
    newer = new_keys("hamburger.edu", datetime.now(UTC).date() + timedelta(days=1))
    write_keys(client, secret, [*keys, *newer])  # a rotation: new keys beside the old
    assert signing_keys.for_domain("hamburger.edu") != newer  # still the cached document
    now[0] += KEYS_SECONDS
    assert signing_keys.for_domain("hamburger.edu") == newer
    client.delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)
    now[0] += KEYS_SECONDS
    assert signing_keys.for_domain("hamburger.edu") == newer  # kept while the secret fails
    assert len(reads) == 4
