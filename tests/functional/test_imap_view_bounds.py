"""A message whose header would make an IMAP view of millions of kept lines, on the
DynamoDB/S3 adapters (moto): 24.5 MB of `To: a` lines (under the 25 MB SMTP and APPEND
limits). Before the view kept its header within bounds (mailcore/imap_view/view.py
MAX_KEPT_LINES, MAX_KEPT_BYTES), its 160 KB item decoded into 600 MB of objects (a peak of
1.4 GB, the IMAP container's limit being 576 MB: the attack review of issue 27); now the
view keeps no header lines, FETCH ENVELOPE reads the view and nothing more."""

from __future__ import annotations

import gc
from datetime import UTC, datetime

from mailcore.adapters.aws.dynamodb_keys import imap_view_key
from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import INBOX, StoredMessage
from mailcore.imap_view.view import make_view
from mailcore.parsing.bounded import summarise
from mailcore.ports import KeptView
from mailcore.wiring import aws_adapters
from tests.imap_support import running_imap

BOB = "bob@hamburger.edu"
IMAP_CONTAINER_MB = 576


def _peak_mb() -> int:
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return int(fields["VmHWM"].split()[0]) // 1024


def test_a_header_of_millions_of_kept_lines_makes_a_small_view(stack) -> None:  # type: ignore[no-untyped-def]
    adapters = aws_adapters()
    adapters.directory.create_account(BOB, "bob-password")
    raw = b"From: a@b\r\nSubject: x\r\n" + b"To: a\r\n" * 3_500_000 + b"\r\nbody\r\n"
    message_id = new_message_id()
    key = adapters.store.appended_key(message_id)
    adapters.store.put_object(key, raw, "message/rfc822")
    adapters.mailboxes.file(StoredMessage(
        account=BOB, message_id=message_id, folder=INBOX, received_at=datetime.now(UTC),
        raw_key=key, size=len(raw), summary=summarise(raw), accepted_id=message_id),
        holding=1)
    adapters.imap_views.put([KeptView(BOB, message_id, key, make_view(raw))])
    item = adapters.imap_views._client.get_item(  # kept in the item, not in S3
        TableName=adapters.imap_views._table,
        Key=imap_view_key(BOB, message_id))["Item"]
    assert len(item["view"]["B"]) < 16 * 1024
    del raw
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views,
                      store=adapters.store, references=adapters.references) as imap:
        client = imap.logged_in()
        client.select("INBOX", readonly=True)
        gc.collect()
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        before = _peak_mb()
        status, _data = client.fetch("1:*", "(FLAGS ENVELOPE)")
        grown = _peak_mb() - before
        assert status == "OK"
        assert grown < IMAP_CONTAINER_MB // 8, grown
