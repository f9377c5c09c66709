"""The ImapViews port: in memory and on DynamoDB (S3 beyond an item's size) alike; and filing,
which writes a view for every copy it files."""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import UTC, datetime

import boto3
import pytest

from mailcore.adapters.aws.dynamodb_keys import VIEW_PREFIX, account_pk
from mailcore.adapters.aws.mailboxes.views import MAX_VIEW_IN_ITEM, DynamoImapViews
from mailcore.adapters.memory.mailbox import InMemoryMailboxRepository
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import SENT
from mailcore.errors import StorageUnavailable
from mailcore.imap_view import view as imap_view
from mailcore.imap_view.view import make_view
from mailcore.ports import KeptView
from mailcore.s3_keys import appended_key, imap_view_object_key
from mailcore.services.appending import copy_message
from mailcore.services.changes import remove_for_good
from mailcore.services.filing import file_inbound
from mailcore.services.recipients import HostedDomains
from tests.conftest import REGION
from tests.contract.conftest import ViewSide

BOB, CAROL, DAVE = "bob@hamburger.edu", "carol@hamburger.edu", "dave@hamburger.edu"
DOMAINS = HostedDomains.of(["hamburger.edu"])
APPENDED = appended_key(new_message_id())  # where the bytes of a view put directly are
ORDINARY = (b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: lunch\r\n"
            b"Date: Mon, 7 Dec 2026 12:00:00 +0000\r\nMessage-ID: <lunch@crepes.fr>\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nAt noon?\r\n")


def many_parts(parts: int = 1000) -> bytes:
    """A real message of `parts` attachments whose names and descriptions are random (so
    that its view, which keeps them in BODY and BODYSTRUCTURE, does not compress)."""
    lines = [b"From: alice@crepes.fr", b"To: bob@hamburger.edu", b"Subject: parts",
             b"MIME-Version: 1.0", b'Content-Type: multipart/mixed; boundary="b"', b""]
    for _ in range(parts - 1):  # the multipart itself is a part
        lines += [b"--b", b'Content-Type: application/octet-stream; name="'
                  + secrets.token_urlsafe(150).encode() + b'"',
                  b"Content-Description: " + secrets.token_urlsafe(120).encode(),
                  b"Content-ID: <" + secrets.token_hex(16).encode() + b"@crepes.fr>",
                  b"", b"x"]
    return b"\r\n".join([*lines, b"--b--", b""])


def _filed(side: ViewSide, raw: bytes, *recipients: str, submitted_by: str | None = None
           ) -> str:
    """The message stored and filed for `recipients` (the real path, views and all); its
    raw key."""
    envelope = Envelope(mail_from=submitted_by or "alice@crepes.fr", rcpt_tos=recipients,
                        peer="192.0.2.1", helo="crepes.fr", tls=True,
                        received_at=datetime.now(UTC), submitted_by=submitted_by)
    key = side.store.put(new_message_id(), raw, envelope)
    file_inbound(key, side.store, side.mailboxes, DOMAINS, references=side.references,
                 views=side.views)
    return key


def _view_items(side: ViewSide, account: str) -> list[str]:
    """The ids of the views kept for `account`, as the backing holds them."""
    if side.table is None:
        assert isinstance(side.mailboxes, InMemoryMailboxRepository)
        return [message_id for (owner, message_id) in side.mailboxes.views if owner == account]
    client = boto3.client("dynamodb", region_name=REGION)
    response = client.query(TableName=side.table,
                            KeyConditionExpression="pk = :pk AND begins_with(sk, :view)",
                            ExpressionAttributeValues={":pk": {"S": account_pk(account)},
                                                       ":view": {"S": VIEW_PREFIX}})
    return [item["sk"]["S"].removeprefix(VIEW_PREFIX) for item in response["Items"]]


def test_a_view_put_is_read_back_as_it_was_made(view_side: ViewSide) -> None:
    view = make_view(ORDINARY)
    message_id, other = new_message_id(), new_message_id()
    view_side.views.put([KeptView(BOB, message_id, APPENDED, view)])

    assert view_side.views.get_many(BOB, [message_id, other]) == {message_id: view}
    assert view_side.views.get_many(CAROL, [message_id]) == {}  # another account's: none
    assert view_side.views.get_many(BOB, []) == {}


def test_a_view_of_another_format_is_left_out(view_side: ViewSide,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    older, current = new_message_id(), new_message_id()
    with monkeypatch.context() as earlier_release:
        earlier_release.setattr(imap_view, "FORMAT", imap_view.FORMAT - 1)
        view_side.views.put([KeptView(BOB, older, APPENDED, make_view(ORDINARY))])
    view_side.views.put([KeptView(BOB, current, APPENDED, make_view(ORDINARY))])

    assert set(view_side.views.get_many(BOB, [older, current])) == {current}


def test_a_view_too_large_for_an_item_goes_beside_the_bytes_and_comes_back(
        view_side: ViewSide) -> None:
    raw = many_parts()
    view = make_view(raw)
    assert len(imap_view.encode(view)) > MAX_VIEW_IN_ITEM  # the premise: a real big view
    key = _filed(view_side, raw, BOB)
    [stored] = view_side.mailboxes.list_folder(BOB, "Inbox", 10, None).messages

    assert view_side.views.get_many(BOB, [stored.message_id]) == {stored.message_id: view}
    # On the table: an object beside the bytes (the memory side keeps every view itself).
    assert view_side.store.exists(imap_view_object_key(key)) is isinstance(
        view_side.views, DynamoImapViews)


def test_removing_a_message_removes_its_view_and_the_last_copy_the_view_object(
        view_side: ViewSide) -> None:
    raw = many_parts()
    key = _filed(view_side, raw, BOB)
    [source] = view_side.mailboxes.list_folder(BOB, "Inbox", 10, None).messages
    copied = copy_message(BOB, source.message_id, "Archive", view_side.store,
                          view_side.references, view_side.mailboxes, view_side.views)
    both = [source.message_id, copied.message_id]
    assert set(view_side.views.get_many(BOB, both)) == set(both)  # the copy shares it
    on_table = isinstance(view_side.views, DynamoImapViews)

    remove_for_good(BOB, copied.message_id, view_side.mailboxes, view_side.store)
    assert set(view_side.views.get_many(BOB, both)) == {source.message_id}
    assert view_side.store.exists(imap_view_object_key(key)) is on_table  # still needed

    remove_for_good(BOB, source.message_id, view_side.mailboxes, view_side.store)
    assert view_side.views.get_many(BOB, both) == {}
    assert _view_items(view_side, BOB) == []
    assert not view_side.store.exists(imap_view_object_key(key))
    assert not view_side.store.exists(key)


def test_filing_twice_on_purpose_leaves_one_view_per_copy_as_a_fresh_parse_makes_it(
        view_side: ViewSide) -> None:
    # Bob sends to Carol, Dave and himself: three Inbox copies and a Sent copy.
    raw = ORDINARY.replace(b"From: alice@crepes.fr", b"From: bob@hamburger.edu")
    envelope = Envelope(mail_from=BOB, rcpt_tos=(CAROL, DAVE, BOB), peer="192.0.2.1",
                        helo="laptop", tls=True, received_at=datetime.now(UTC),
                        submitted_by=BOB)
    key = view_side.store.put(new_message_id(), raw, envelope)
    for _ in range(2):
        file_inbound(key, view_side.store, view_side.mailboxes, DOMAINS,
                     references=view_side.references, views=view_side.views)

    fresh = make_view(raw)
    copies = {account: [message.message_id for folder in ("Inbox", SENT)
                        for message in view_side.mailboxes.list_folder(
                            account, folder, 10, None).messages]
              for account in (BOB, CAROL, DAVE)}
    assert {account: len(ids) for account, ids in copies.items()} == {BOB: 2, CAROL: 1,
                                                                      DAVE: 1}
    for account, ids in copies.items():
        assert sorted(_view_items(view_side, account)) == sorted(ids)
        assert view_side.views.get_many(account, ids) == dict.fromkeys(ids, fresh)


class _Unreachable:
    """Views that cannot be kept (the table throttling, say): a test's wrapper."""

    def put(self, views: object) -> None:
        raise StorageUnavailable("keeping IMAP views failed")

    def get_many(self, account: str, message_ids: object) -> dict[str, object]:
        raise StorageUnavailable("reading IMAP views failed")


def test_views_not_kept_never_fail_filing_and_its_retry_keeps_them(
        view_side: ViewSide) -> None:
    envelope = Envelope(mail_from="alice@crepes.fr", rcpt_tos=(BOB, CAROL), peer="192.0.2.1",
                        helo="crepes.fr", tls=True, received_at=datetime.now(UTC))
    key = view_side.store.put(new_message_id(), ORDINARY, envelope)

    first = file_inbound(key, view_side.store, view_side.mailboxes, DOMAINS,
                         references=view_side.references, views=_Unreachable())  # type: ignore[arg-type]
    assert first.filed_for == (BOB, CAROL)
    assert _view_items(view_side, BOB) == _view_items(view_side, CAROL) == []

    again = file_inbound(key, view_side.store, view_side.mailboxes, DOMAINS,
                         references=view_side.references, views=view_side.views)
    assert again.already_filed_for == (BOB, CAROL)  # found filed: their views put all the same
    for account in (BOB, CAROL):
        [message_id] = _view_items(view_side, account)
        assert view_side.views.get_many(account, [message_id]) == {
            message_id: make_view(ORDINARY)}


def test_reading_250_views_takes_three_batch_reads(stack) -> None:  # type: ignore[no-untyped-def]
    client = boto3.client("dynamodb", region_name=REGION)
    calls: Counter[str] = Counter()
    client.meta.events.register("before-call.dynamodb.*",
                                lambda model, **_: calls.update([model.name]))
    views = DynamoImapViews(client, stack.outputs["MailboxTableName"],
                            boto3.client("s3", region_name=REGION),
                            stack.outputs["MessageBucketName"])
    view = make_view(ORDINARY)
    ids = [new_message_id() for _ in range(250)]
    views.put([KeptView(BOB, message_id, APPENDED, view) for message_id in ids])
    assert calls == {"BatchWriteItem": 10}  # 25 items a request
    calls.clear()

    assert views.get_many(BOB, ids) == dict.fromkeys(ids, view)
    assert calls == {"BatchGetItem": 3}  # 100 keys a request


def test_a_view_made_from_bytes_read_earlier_is_kept_only_where_none_is(
        view_side: ViewSide) -> None:
    """put(if_missing=True), for views IMAP or the backfill made from bytes read a while
    ago: kept for a message without a view, in batches; never over a current view of the
    same size (a draft's new one); never for a message gone meanwhile."""
    keys = [_filed(view_side, ORDINARY.replace(b"lunch", b"lunch %d" % number), BOB)
            for number in range(60)]
    page = view_side.mailboxes.list_folder(BOB, "Inbox", 100, None).messages
    by_key = {message.raw_key: message for message in page}
    ids = [by_key[key].message_id for key in keys]
    views = {message_id: view_side.views.get_many(BOB, [message_id])[message_id]
             for message_id in ids}
    # Views of all 60 gone (filed before views), then one kept anew: a draft's own.
    for message_id in ids:
        view_side.views.forget(BOB, message_id)
    newer = make_view(ORDINARY.replace(b"lunch", b"lunch 0"))  # same size, other bytes
    newer = imap_view.ImapView(**{**newer.__dict__, "envelope": b"(NIL)"})
    view_side.views.put([KeptView(BOB, ids[0], keys[0], newer)])
    gone = ids[1]
    remove_for_good(BOB, gone, view_side.mailboxes, view_side.store)
    view_side.views.put([KeptView(BOB, message_id, key, views[message_id])
                         for message_id, key in zip(ids, keys, strict=True)], if_missing=True)
    kept = view_side.views.get_many(BOB, ids)
    assert kept[ids[0]].envelope == b"(NIL)"  # the newer view stayed
    assert gone not in kept and gone not in _view_items(view_side, BOB)
    assert {message_id: kept[message_id] for message_id in ids[2:]} == {
        message_id: views[message_id] for message_id in ids[2:]}
