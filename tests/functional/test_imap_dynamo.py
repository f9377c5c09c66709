"""IMAP on the DynamoDB and S3 adapters (the template's resources in moto): messages filed
before folders had UIDs get theirs at the first SELECT, once, after the newer ones."""

from __future__ import annotations

from datetime import UTC, datetime

from mailcore.adapters.aws.clients import dynamodb_client
from mailcore.adapters.aws.mailboxes import codec
from mailcore.adapters.aws.mailboxes.folders import FolderState, folder_change
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import StoredMessage
from mailcore.parsing.bounded import summarise
from mailcore.wiring import aws_adapters
from tests.functional.test_imap import BOB, RAW
from tests.imap_support import running_imap


def _filed_before_uids(table: str, subject: str) -> StoredMessage:
    """A message item as filing wrote it before this version: no UID, no change log."""
    adapters = aws_adapters()
    message_id = new_message_id()
    raw = RAW.replace(b"Bonjour", subject.encode())
    key = adapters.store.put(message_id, raw, Envelope("alice@crepes.fr", (BOB,), "192.0.2.1",
                                                       "crepes.fr", False))
    adapters.references.hold(key, 1)
    message = StoredMessage(account=BOB, message_id=message_id, folder="Inbox",
                            received_at=datetime.now(UTC), raw_key=key, size=len(raw),
                            summary=summarise(raw), accepted_id=message_id)
    item = codec.message_item(message, 0)
    del item["modseq"]
    dynamodb_client().transact_write_items(TransactItems=[
        {"Put": {"TableName": table, "Item": item}},
        {"Update": {key: value for key, value in folder_change(
            table, FolderState(BOB, "Inbox", False, 0, 1), total=1, unread=1)["Update"].items()
            if key != "ConditionExpression"}},
    ])
    return message


def test_messages_from_before_uids_are_listed_after_the_first_select(stack) -> None:
    table = stack.outputs["MailboxTableName"]
    adapters = aws_adapters()
    old = [_filed_before_uids(table, f"old {number}") for number in range(2)]
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views, store=adapters.store,
                      references=adapters.references) as imap:
        client = imap.logged_in()
        assert client.select("INBOX") == ("OK", [b"2"])
        _, fetched = client.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = sorted(part[1].decode().strip() for part in fetched
                          if isinstance(part, tuple))
        assert subjects == ["Subject: old 0", "Subject: old 1"]
        uids = sorted(adapters.mailboxes.get(BOB, message.message_id).uid for message in old)
        assert uids == [1, 2]
        client.logout()
        again = imap.logged_in()
        assert again.select("INBOX") == ("OK", [b"2"])  # given once: no new UIDs
        assert sorted(adapters.mailboxes.get(BOB, m.message_id).uid for m in old) == uids
