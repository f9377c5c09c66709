"""No path deletes bytes another copy holds: one message received by Bob and Carol (one raw
object, two mailbox copies), and whatever Bob does with his copy (send it as a draft,
delete it from Trash over the API, EXPUNGE it, MOVE it, DELETE the folder holding it,
or have its delivery finish), Carol still reads hers over IMAP and the API. When the last
copy goes, the bytes go too. IMAP through imaplib, the API's handler, on moto."""

from __future__ import annotations

import imaplib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from mailcore.adapters.memory.delivery import InMemoryNextHops, InMemorySmtpSender
from mailcore.domain.delivery import DeliveryJob
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.retry import RetryPolicy
from mailcore.errors import MessageNotFound
from mailcore.services.delivery import deliver_job
from mailcore.services.filing import file_inbound
from mailcore.wiring import aws_adapters
from tests.conftest import REGION, load_function
from tests.functional.api_support import BOB, CAROL, call
from tests.imap_support import RunningImap, running_imap

ZOE = "zoe@elsewhere.test"
# From Bob, so that his copy may also be sent again as a draft (the identity rules hold).
RAW = (b"From: bob@hamburger.edu\r\nTo: carol@hamburger.edu, zoe@elsewhere.test\r\n"
       b"Subject: shared\r\nMessage-ID: <shared@hamburger.edu>\r\n\r\nOne object, two copies\r\n")


@pytest.fixture
def api(stack, monkeypatch):
    monkeypatch.setenv("MAILPIPE_OUTGOING_QUEUE_URL", stack.outputs["OutgoingQueueUrl"])
    aws_adapters.cache_clear()
    for account in (BOB, CAROL):
        aws_adapters().directory.create_account(account, "correct horse")
    return load_function("serve_api")


@pytest.fixture
def imap(api):
    adapters = aws_adapters()
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views, store=adapters.store,
                      references=adapters.references) as running:
        yield running


def _shared(submitted_by: str | None = None) -> str:
    """Filed into Bob's and Carol's Inboxes (or, submitted by Bob, his Sent and her Inbox,
    and a delivery job for Zoe's domain) as file_message files it: one raw object."""
    adapters = aws_adapters()
    rcpts = (CAROL, ZOE) if submitted_by else (BOB, CAROL)
    envelope = Envelope(mail_from=submitted_by or "alice@crepes.fr", rcpt_tos=rcpts,
                        peer="192.0.2.1", helo="h", tls=True, submitted_by=submitted_by,
                        received_at=datetime.now(UTC))
    key = adapters.store.put(new_message_id(), RAW, envelope)
    file_inbound(key, adapters.store, adapters.mailboxes, adapters.domains, adapters.outgoing,
                 references=adapters.references, views=adapters.imap_views)
    return key


def _exists(key: str) -> bool:
    try:
        aws_adapters().store.get_raw(key)
    except MessageNotFound:
        return False
    return True


def _imap_select(imap: RunningImap, account: str, folder: str) -> imaplib.IMAP4_SSL:
    client = imap.logged_in(account)
    assert client.select(folder)[0] == "OK"
    return client


def _carol_reads_her_copy(api, imap: RunningImap, message_id: str) -> None:
    client = _imap_select(imap, CAROL, "INBOX")
    status, fetched = client.fetch("1", "(BODY.PEEK[])")
    assert status == "OK" and fetched[0][1] == RAW  # type: ignore[index]
    assert client.noop()[0] == "OK"
    client.logout()
    raw = call(api, "GET", f"/v1/messages/{message_id}/raw", account=CAROL)
    assert (raw.status, raw.body) == (200, RAW)


def _delete_for_good_everywhere(api, message_id: str) -> None:
    for account in (BOB, CAROL):
        for _ in range(2):  # to Trash, then for good; gone already: 404
            assert call(api, "DELETE", f"/v1/messages/{message_id}",
                        account=account).status in (200, 204, 404)


# ---- what Bob does with his copy --------------------------------------------------------
def _send_as_draft(api, imap: RunningImap, message_id: str) -> None:
    client = _imap_select(imap, BOB, "INBOX")
    assert client.store("1", "+FLAGS", r"(\Draft)")[0] == "OK"
    assert call(api, "POST", f"/v1/drafts/{message_id}/send").status == 202


def _delete_from_trash_over_the_api(api, imap: RunningImap, message_id: str) -> None:
    assert call(api, "DELETE", f"/v1/messages/{message_id}").json["result"] == "moved_to_trash"
    assert call(api, "DELETE", f"/v1/messages/{message_id}").status in (200, 204)


def _expunge(api, imap: RunningImap, message_id: str) -> None:
    client = _imap_select(imap, BOB, "INBOX")
    assert client.store("1", "+FLAGS", r"(\Deleted)")[0] == "OK"
    assert client.expunge()[0] == "OK"


def _move(api, imap: RunningImap, message_id: str) -> None:
    client = _imap_select(imap, BOB, "INBOX")
    assert client.uid("MOVE", "1", "Archive")[0] == "OK"


def _delete_the_folder_holding_it(api, imap: RunningImap, message_id: str) -> None:
    client = _imap_select(imap, BOB, "INBOX")
    assert client.create("Kept")[0] == "OK"
    assert client.uid("MOVE", "1", "Kept")[0] == "OK"
    assert client.select("INBOX")[0] == "OK"
    assert client.delete("Kept")[0] == "OK"


BOBS_ACTIONS: dict[str, Callable[..., None]] = {
    "draft send": _send_as_draft,
    "API delete from Trash": _delete_from_trash_over_the_api,
    "IMAP EXPUNGE": _expunge,
    "IMAP MOVE": _move,
    "IMAP DELETE of a non-empty folder": _delete_the_folder_holding_it,
}


@pytest.mark.parametrize("action", BOBS_ACTIONS.values(), ids=BOBS_ACTIONS.keys())
def test_what_one_account_does_with_its_copy_leaves_the_others_bytes(api, imap, action):
    key = _shared()
    message_id = key.split("/")[1]

    action(api, imap, message_id)

    assert _exists(key)
    _carol_reads_her_copy(api, imap, message_id)
    _delete_for_good_everywhere(api, message_id)
    assert not _exists(key)  # the last copy took the bytes with it


def _finish_delivery(stack) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    [queued] = sqs.receive_message(QueueUrl=stack.outputs["OutgoingQueueUrl"],
                                   MaxNumberOfMessages=10)["Messages"]
    job = DeliveryJob.from_json(queued["Body"])
    adapters = aws_adapters()
    deliver_job(job, attempt=1, now=datetime.now(UTC), store=adapters.store,
                hops=InMemoryNextHops(),
                sender=InMemorySmtpSender({rcpt: (250, "2.0.0 ok") for rcpt in job.recipients}),
                ledger=adapters.ledger, policy=RetryPolicy(), reporting_mta="hamburger.edu",
                references=adapters.references, objects=adapters.store)


def test_the_end_of_a_delivery_leaves_the_bytes_of_the_copies(api, imap, stack):
    key = _shared(submitted_by=BOB)  # Bob's Sent copy, Carol's Inbox copy, a job for Zoe
    message_id = key.split("/")[1]

    _finish_delivery(stack)

    assert _exists(key)
    _carol_reads_her_copy(api, imap, message_id)
    client = _imap_select(imap, BOB, "Sent")
    assert client.fetch("1", "(BODY.PEEK[])")[1][0][1] == RAW  # type: ignore[index]
    _delete_for_good_everywhere(api, message_id)
    assert not _exists(key)


def test_raw_bytes_are_deleted_only_where_a_reference_was_given_back() -> None:
    """Every deletion of raw bytes in the code is one of the two that follow a reference
    given back: a copy removed for good (services.changes.remove_for_good) or a delivery
    job done (services.delivery). A new path must go through one of them."""
    root = Path(__file__).resolve().parents[2]
    callers = sorted(
        f"{path.relative_to(root)}:{number}"
        for top in ("layers", "edge", "functions", "mailpipe")
        for path in (root / top).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"(?<!changes)\.delete_message\(|\.delete_objects?\(", line)
        and "adapters/" not in str(path) and "sqs" not in line)
    assert [caller.split(":")[0] for caller in callers] == [
        "layers/mailcore/python/mailcore/services/changes.py",
        "layers/mailcore/python/mailcore/services/delivery.py"], callers


def test_drafts_both_accounts_make_of_one_message_and_save_over_the_api_stay_apart(api, imap):
    # The copies share the message's id: saving a draft made of each (STORE \Draft) once
    # showed and sent the received text, and must never write one account's draft over
    # the other's nor drop the bytes either still holds.
    key = _shared()
    message_id = key.split("/")[1]
    for account in (BOB, CAROL):
        client = _imap_select(imap, account, "INBOX")
        assert client.store("1", "+FLAGS", r"(\Draft)")[0] == "OK"
        client.logout()
    saved = call(api, "PUT", f"/v1/drafts/{message_id}", account=BOB,
                 body={"to": [ZOE], "subject": "mine", "text": "Bob's new text"})
    assert saved.status == 200, saved.body
    assert _exists(key)  # Carol's copy still holds them
    assert call(api, "GET", f"/v1/messages/{message_id}/raw", account=CAROL).body == RAW
    saved = call(api, "PUT", f"/v1/drafts/{message_id}", account=CAROL,
                 body={"to": [ZOE], "subject": "mine", "text": "Carol's new text"})
    assert saved.status == 200, saved.body
    assert not _exists(key)  # the received bytes went with their last copy
    for account, text in ((BOB, b"Bob's new text"), (CAROL, b"Carol's new text")):
        raw = call(api, "GET", f"/v1/messages/{message_id}/raw", account=account)
        assert raw.status == 200 and text in raw.body and b"two copies" not in raw.body
    saved = call(api, "PUT", f"/v1/drafts/{message_id}", account=BOB,
                 body={"to": [ZOE], "subject": "mine", "text": "Bob, again"})
    assert saved.status == 200
    assert b"Bob, again" in call(api, "GET", f"/v1/messages/{message_id}/raw").body
    assert b"Carol's new text" in call(api, "GET", f"/v1/messages/{message_id}/raw",
                                       account=CAROL).body
