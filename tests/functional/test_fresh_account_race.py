"""A new account's first mail races the first reads of its folders: every reader answers.

Seen as a 500 (KeyError 'folder_name') in 2 of 9 runs of "replay the seed, list bob's
Inbox at once": the Inbox's item is made by the first filing's counter update, and a
reader could see it with counters but no name. Here filing and reading race on many
fresh accounts, through the adapter the API uses, against moto as the local runtime serves
it.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import INBOX
from mailcore.services.filing import file_inbound
from mailcore.services.reading import list_mailboxes, list_messages
from mailcore.wiring import aws_adapters

pytestmark = pytest.mark.concurrent  # moto's server as the local runtime serves it
ACCOUNTS = 40
ROUNDS = 3  # before the fix, one round of 40 accounts met the KeyError 2 times in 5
RAW = b"From: alice@crepes.fr\r\nSubject: first\r\n\r\nhello\r\n"


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_reading_a_fresh_accounts_folders_while_its_first_mail_is_filed(stack, round_):
    adapters = aws_adapters()
    mailboxes, store = adapters.mailboxes, adapters.store
    accounts = [f"fresh{round_}.{number}@hamburger.edu" for number in range(ACCOUNTS)]
    keys = [store.put(new_message_id(), RAW, Envelope(
        mail_from="alice@crepes.fr", rcpt_tos=(account,), peer="192.0.2.1", helo="crepes.fr",
        tls=False, received_at=datetime.now(UTC))) for account in accounts]
    filed = threading.Event()
    seen_totals: list[int] = []

    def file_all() -> None:
        for key in keys:
            file_inbound(key, store, mailboxes, adapters.domains,
                         references=adapters.references, views=adapters.imap_views)
        filed.set()

    def read_until_filed(account: str) -> None:
        while True:
            done = filed.is_set()
            folders = {folder.name: folder for folder in list_mailboxes(account, mailboxes)}
            folder, page = list_messages(account, INBOX, 10, None, mailboxes)
            assert folder.name == INBOX and folders[INBOX].name == INBOX
            seen_totals.append(folders[INBOX].total)
            if done:
                assert len(page.messages) == 1
                return

    with ThreadPoolExecutor(max_workers=6) as pool:
        filing = pool.submit(file_all)
        readers = [pool.submit(read_until_filed, account) for account in accounts]
        filing.result()
        for reader in readers:
            reader.result()  # re-raises what a reader met
    assert set(seen_totals) <= {0, 1}
