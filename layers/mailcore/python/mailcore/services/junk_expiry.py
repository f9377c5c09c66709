"""Junk emptied of old mail (issue 29 item 7): each account's Junk keeps what has been in
Junk for less than `junk_days` days (its filter settings; 30 unless the account chose
otherwise), and what has been there longer goes for good, with its bytes once nothing else
needs them. "In Junk since" is when it was filed there, or moved or copied in
(StoredMessage.in_folder_since): an old message moved into Junk today stays junk_days more.

Run for every account on a schedule. Each run does a bounded amount of work (the caller's
`out_of_time`) and leaves the rest to the next; removing what is already gone does nothing,
so a run repeated, or cut short and run again, ends the same. An account costs one query
when its Junk holds nothing older than a day (the shortest `junk_days`), and otherwise its
settings and one query per page of what it removes or keeps: what Junk holds that it
received within junk_days is never read. Listed oldest received first, a message moved in
late is read and kept on each run until it has been in Junk junk_days, then removed: at
most MAX_JUNK_DAYS daily reads of one item each (its share of a query page), not forever.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailcore.domain.mailbox import JUNK
from mailcore.errors import MessageNotFound
from mailcore.ports import (
    MAX_ACCOUNTS_PER_PAGE,
    AccountListing,
    JunkFilterStore,
    Mailboxes,
    ObjectStore,
)
from mailcore.services.changes import remove_for_good

# Never younger than a day, whatever the settings say: a message filed a moment ago is not
# removed before its owner could have looked at it.
MIN_JUNK_DAYS = 1
PAGE = 100  # messages read per query


@dataclass(frozen=True)
class AccountExpiry:
    removed: int
    finished: bool  # False: out of time, older messages are left for the next run
    kept: int = 0  # received before the cutoff, but moved into Junk since


@dataclass(frozen=True)
class ExpiryRun:
    accounts: int  # accounts looked at (a last one only partly, when not finished)
    removed: int
    finished: bool
    kept: int = 0  # read and left: received long ago, in Junk for less than junk_days


def expire_account_junk(account: str, now: datetime, mailboxes: Mailboxes,
                        objects: ObjectStore, filters: JunkFilterStore,
                        out_of_time: Callable[[], bool]) -> AccountExpiry:
    """Remove for good the messages of the account's Junk received and in Junk since
    before now - junk_days, oldest received first, until done or out of time."""
    oldest = mailboxes.list_received_before(account, JUNK, now - timedelta(days=MIN_JUNK_DAYS),
                                            1, None).messages
    if not oldest:
        return AccountExpiry(0, True)
    days = max(filters.settings(account).junk_days, MIN_JUNK_DAYS)
    before = now - timedelta(days=days)
    if oldest[0].received_at >= before:
        return AccountExpiry(0, True)
    removed = kept = 0
    cursor = None
    while True:
        page = mailboxes.list_received_before(account, JUNK, before, PAGE, cursor)
        for message in page.messages:
            if out_of_time():
                return AccountExpiry(removed, False, kept)
            if message.in_folder_since >= before:
                kept += 1  # read again by the runs until junk_days after it came in
                continue
            try:
                # Only while it is still in Junk under the UID listed: one its owner moved
                # out meanwhile stays (the listing is read from an index that may lag), and
                # so does one moved out and back in (a new UID, and a new in-Junk time).
                remove_for_good(account, message.message_id, mailboxes, objects,
                                where=(JUNK, message.uid))
            except MessageNotFound:
                continue  # moved out, or removed by someone else
            removed += 1
        if page.cursor is None:
            return AccountExpiry(removed, True, kept)
        cursor = page.cursor


def expire_all_junk(directory: AccountListing, now: datetime, mailboxes: Mailboxes,
                    objects: ObjectStore, filters: JunkFilterStore,
                    out_of_time: Callable[[], bool]) -> ExpiryRun:
    """expire_account_junk for every account of the directory, in its order, until done or
    out of time. The next run starts again from the first account: those done cost a query
    each, so every run gets further into the work left."""
    accounts = removed = kept = 0
    cursor = None
    while True:
        page = directory.list_accounts(MAX_ACCOUNTS_PER_PAGE, cursor)
        for account in page.accounts:
            if out_of_time():
                return ExpiryRun(accounts, removed, False, kept)
            accounts += 1
            expired = expire_account_junk(account, now, mailboxes, objects, filters,
                                          out_of_time)
            removed, kept = removed + expired.removed, kept + expired.kept
            if not expired.finished:
                return ExpiryRun(accounts, removed, False, kept)
        if page.cursor is None:
            return ExpiryRun(accounts, removed, True, kept)
        cursor = page.cursor
