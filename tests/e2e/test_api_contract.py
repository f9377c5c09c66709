"""The mailbox API of a running local stack: its OpenAPI contract fuzzed by schemathesis,
and the paths a mail client takes (threads, large attachments through S3 links)."""

from __future__ import annotations

import email
import os
import subprocess
import sys
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pytest
import requests
import yaml

from mailpipe.local.launcher import StackProcess, start_stack
from tests.e2e.api_client import ApiClient

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BOB, CAROL = "bob@hamburger.edu", "carol@hamburger.edu"
PASSWORDS = {BOB: "bob-password-1", CAROL: "carol-password-1", "fuzz@hamburger.edu": "fuzz-pw-1"}


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    running = start_stack(["hamburger.edu"], PASSWORDS)
    yield running
    running.stop()


def test_openapi_document_is_served_as_json(stack):
    served = requests.get(f"{stack.api}/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == yaml.safe_load((ROOT / "openapi.yaml").read_text())


def test_reply_reaches_the_sender_threaded_with_the_original(stack):
    bob, carol = ApiClient(stack, BOB, PASSWORDS[BOB]), ApiClient(stack, CAROL, PASSWORDS[CAROL])
    sent = bob.post("/messages", {"to": [CAROL], "subject": "Dinner?", "text": "At 8?"})
    assert sent.status_code == 202, sent.text
    [received] = carol.wait_for("Inbox", 1)

    answer = carol.post("/messages", {"to": [BOB], "text": "Yes.",
                                      "in_reply_to": received["id"]})
    assert answer.status_code == 202, answer.text
    [reply] = bob.wait_for("Inbox", 1)

    raw = email.message_from_bytes(bob.get(f"/messages/{reply['id']}/raw").content,
                                   policy=policy.default)
    assert raw["Subject"] == "Re: Dinner?"
    assert raw["In-Reply-To"] == sent.json()["message_id"] == received["message_id"]
    assert raw["References"] == sent.json()["message_id"]
    [sent_copy] = bob.wait_for("Sent", 1)
    assert reply["thread_id"] == sent_copy["thread_id"] == received["thread_id"]
    assert "answered" in carol.get(f"/messages/{received['id']}").json()["flags"]
    delivery = bob.get(f"/messages/{sent.json()['id']}/delivery").json()
    assert [(r["recipient"], r["state"]) for r in delivery["recipients"]] == [
        (CAROL, "delivered")]


def test_large_attachment_goes_up_and_down_through_short_lived_links(stack):
    bob, carol = ApiClient(stack, BOB, PASSWORDS[BOB]), ApiClient(stack, CAROL, PASSWORDS[CAROL])
    data = os.urandom(6 * 1024 * 1024)  # over Lambda's 6 MB response limit
    upload = bob.post("/uploads", {"filename": "photos.zip",
                                   "content_type": "application/zip"}).json()
    posted = requests.post(upload["url"], data=upload["fields"], timeout=60,
                           files={"file": ("photos.zip", data, "application/zip")})
    assert posted.status_code in (200, 204), posted.text

    sent = bob.post("/messages", {"to": [CAROL], "subject": "photos", "attachments": [
        {"filename": "photos.zip", "content_type": "application/zip",
         "upload_id": upload["upload_id"]}]})
    assert sent.status_code == 202, sent.text
    message = next(m for m in carol.wait_for("Inbox", 2) if m["subject"] == "photos")

    link = carol.get(f"/messages/{message['id']}/attachments/0", allow_redirects=False)
    assert link.status_code == 302
    fetched = requests.get(link.headers["Location"], timeout=60)
    assert fetched.status_code == 200 and fetched.content == data


def test_schemathesis_finds_no_server_error_and_no_breach_of_the_contract(stack, tmp_path):
    """Generated requests (valid and invalid) for every operation, then stateful chains
    (send, read, change, delete); every answer must be documented and match its schema."""
    token = requests.post(f"{stack.api}/session", timeout=10, json={
        "address": "fuzz@hamburger.edu", "password": PASSWORDS["fuzz@hamburger.edu"]}).json()
    schemathesis = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [str(schemathesis), "run", f"{stack.api}/openapi.json",
         "--url", stack.api.removesuffix("/v1"),
         "--header", f"Authorization: Bearer {token['token']}",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                     "response_schema_conformance,response_headers_conformance",
         "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "6",
         "--workers", "1", "--seed", "20261126", "--generation-database", "none",
         "--no-color", "--request-timeout", "30"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
