"""One message filed for two accounts shares its bytes and, when its
view is too large for an item, the view object beside them (messages/<id>/imap-view). What
one account does over IMAP (FETCH, COPY, MOVE and EXPUNGE of every copy) never changes what
the other is answered, and the object goes with the last copy."""

from __future__ import annotations

import base64
import random

import boto3

from mailcore import s3_keys
from mailcore.wiring import aws_adapters
from tests.conftest import REGION
from tests.functional.api_support import BOB, CAROL, deliver
from tests.imap_support import ACCOUNTS, running_imap


def test_one_accounts_imap_never_changes_the_others_shared_view(stack) -> None:  # type: ignore[no-untyped-def]
    adapters = aws_adapters()
    for account in (BOB, CAROL):
        adapters.directory.create_account(account, ACCOUNTS[account])
    subject = base64.b64encode(random.Random(1).randbytes(300_000)).decode()
    message_id = deliver(subject, BOB, CAROL)
    raw_key = adapters.mailboxes.get(BOB, message_id).raw_key
    s3 = boto3.client("s3", region_name=REGION)
    bucket = adapters.settings.bucket
    view_key = s3_keys.imap_view_object_key(raw_key)
    original = s3.get_object(Bucket=bucket, Key=view_key)["Body"].read()
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views,
                      store=adapters.store, references=adapters.references) as imap:
        carol = imap.logged_in(CAROL)
        carol.select("INBOX", readonly=True)
        _, before = carol.fetch("1", "(ENVELOPE BODYSTRUCTURE)")
        bob = imap.logged_in(BOB)
        bob.select("INBOX")
        assert bob.fetch("1", "(ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER])")[0] == "OK"
        assert bob.copy("1", "Archive")[0] == "OK"
        bob.store("1", "+FLAGS", r"(\Deleted)")
        bob.expunge()
        bob.select("Archive")
        bob.store("1", "+FLAGS", r"(\Deleted)")
        bob.expunge()
        assert s3.get_object(Bucket=bucket, Key=view_key)["Body"].read() == original
        _, after = carol.fetch("1", "(ENVELOPE BODYSTRUCTURE)")
        assert after == before
        carol.close()
        carol.select("INBOX")
        carol.store("1", "+FLAGS", r"(\Deleted)")
        carol.expunge()
    left = s3.list_objects_v2(Bucket=bucket, Prefix=raw_key.rsplit("/", 1)[0]).get("Contents", [])
    assert left == []
