"""SEARCH on the DynamoDB and S3 adapters (the template's resources in moto), over imaplib:
header criteria are answered from the stored IMAP views, a batch of 100 messages per
request, without reading one message's bytes; BODY still reads the bytes; a message
without a view is still found (from its bytes), and gets its view then. A folder's
listing is read in DynamoDB's own pages, without a Limit."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from mailcore.adapters.aws import clients
from mailcore.adapters.aws.dynamodb_keys import UID_INDEX
from mailcore.adapters.aws.mailboxes import codec
from mailcore.adapters.aws.mailboxes.folders import FolderState, folder_change
from mailcore.domain.ids import new_message_id
from mailcore.domain.mailbox import StoredMessage
from mailcore.imap_view.view import make_view
from mailcore.parsing.bounded import summarise
from mailcore.ports import KeptView
from mailcore.wiring import AwsAdapters, aws_adapters
from tests.imap_support import running_imap

BOB = "bob@hamburger.edu"
MESSAGES = 150  # two SEARCH batches


def _day(number: int) -> int:
    return 1 + number % 28


def _raw(number: int) -> bytes:
    lines = [f"From: Sender {number % 5} <s{number % 5}@crepes.fr>", f"To: {BOB}",
             f"Subject: report {number}",
             f"Date: Mon, {_day(number)} Nov 2026 10:00:00 +0100",
             f"Message-ID: <{number}@crepes.fr>"]
    if number % 4 == 0:
        lines.append("Cc: Carol <carol@hamburger.edu>")
    if number % 6 == 0:
        lines.append("Bcc: eve@crepes.fr")
    body = "a needle in the hay" if number % 10 == 3 else "just hay"
    return ("\r\n".join([*lines, "", body, ""])).encode()


class Requests:
    """Every call the adapters make of their botocore clients: (service, operation, its
    parameters as given)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.sent.append((model.service_model.service_name, model.name, params))

    def of(self, service: str, operation: str | None = None) -> list[dict[str, Any]]:
        return [params for name, called, params in self.sent
                if name == service and operation in (None, called)]


@contextmanager
def counted() -> Iterator[Requests]:
    requests = Requests()
    for client, name in ((clients.dynamodb_client(), "dynamodb"), (clients.s3_client(), "s3")):
        client.meta.events.register(f"before-parameter-build.{name}", requests)
    try:
        yield requests
    finally:
        for client, name in ((clients.dynamodb_client(), "dynamodb"),
                             (clients.s3_client(), "s3")):
            client.meta.events.unregister(f"before-parameter-build.{name}", requests)


def _file(adapters: AwsAdapters, count: int, with_view: Callable[[int], bool]) -> list[str]:
    """`count` messages filed in order (message n has UID n + 1), with their views for
    those `with_view` names; their message ids."""
    ids: list[str] = []
    for start in range(0, count, 25):
        arrivals, views = [], []
        for number in range(start, min(count, start + 25)):
            raw = _raw(number)
            message_id = new_message_id()
            key = adapters.store.appended_key(message_id)
            adapters.store.put_object(key, raw, "message/rfc822")
            arrivals.append((StoredMessage(
                account=BOB, message_id=message_id, folder="Inbox",
                received_at=datetime.now(UTC), raw_key=key, size=len(raw),
                summary=summarise(raw), accepted_id=message_id), 1))
            if with_view(number):
                views.append(KeptView(BOB, message_id, key, make_view(raw)))
            ids.append(message_id)
        assert all(adapters.mailboxes.file_together(arrivals))
        adapters.imap_views.put(views)
    return ids


def _found(client: Any, *criteria: str) -> list[int]:
    """The message numbers (UID - 1) a UID SEARCH finds."""
    status, data = client.uid("SEARCH", *criteria)
    assert status == "OK", data
    return sorted(int(uid) - 1 for uid in data[0].split())


def _expected(test: Callable[[int], bool]) -> list[int]:
    return [number for number in range(MESSAGES) if test(number)]


HEADER_SEARCHES: dict[str, tuple[tuple[str, ...], Callable[[int], bool]]] = {
    "FROM": (("FROM", "s3@crepes.fr"), lambda n: n % 5 == 3),
    "FROM name": (("FROM", '"Sender 2"'), lambda n: n % 5 == 2),
    "TO": (("TO", BOB), lambda n: True),
    "CC": (("CC", "carol"), lambda n: n % 4 == 0),
    "BCC": (("BCC", "eve@crepes.fr"), lambda n: n % 6 == 0),
    "SUBJECT": (("SUBJECT", '"report 7"'), lambda n: "report 7" in f"report {n}"),
    "HEADER Subject": (("HEADER", "Subject", '"report 12"'),
                       lambda n: "report 12" in f"report {n}"),
    "SENTSINCE": (("SENTSINCE", "20-Nov-2026"), lambda n: _day(n) >= 20),
    "SENTON": (("SENTON", "5-Nov-2026"), lambda n: _day(n) == 5),
    "SENTBEFORE": (("SENTBEFORE", "3-Nov-2026"), lambda n: date(2026, 11, _day(n))
                   < date(2026, 11, 3)),
    "NOT FROM OR CC": (("NOT", "OR", "FROM", "s1@crepes.fr", "CC", "carol"),
                       lambda n: not (n % 5 == 1 or n % 4 == 0)),
}


def test_header_searches_read_the_views_and_no_message_bytes(stack) -> None:
    adapters = aws_adapters()
    _file(adapters, MESSAGES, lambda number: True)
    batches = math.ceil(MESSAGES / 100)
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views,
                      store=adapters.store, references=adapters.references) as imap:
        client = imap.logged_in()
        assert client.select("INBOX") == ("OK", [str(MESSAGES).encode()])
        for name, (criteria, matches) in HEADER_SEARCHES.items():
            with counted() as requests:
                found = _found(client, *criteria)
            assert found == _expected(matches), name
            assert requests.of("s3") == [], name
            assert len(requests.of("dynamodb", "BatchGetItem")) == batches, name
            # Besides the views: bringing the selected folder up to date after the command.
            assert len(requests.of("dynamodb")) <= batches + 3, (name, requests.sent)
        client.logout()


def test_a_body_search_still_reads_the_bytes_and_finds(stack) -> None:
    adapters = aws_adapters()
    _file(adapters, MESSAGES, lambda number: True)
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views,
                      store=adapters.store, references=adapters.references) as imap:
        client = imap.logged_in()
        client.select("INBOX")
        with counted() as requests:
            found = _found(client, "BODY", "needle")
            with_header = _found(client, "FROM", "s2@crepes.fr", "BODY", "needle")
        client.logout()
    assert found == _expected(lambda n: n % 10 == 3)
    assert with_header == _expected(lambda n: n % 10 == 3 and n % 5 == 2)
    # BODY reads every message once; with FROM first, only the messages it lets through.
    assert len(requests.of("s3", "GetObject")) == MESSAGES + len(_expected(lambda n: n % 5 == 2))


def test_a_message_without_a_view_is_found_from_its_bytes_and_gets_its_view(stack) -> None:
    adapters = aws_adapters()
    ids = _file(adapters, MESSAGES, lambda number: number % 7 != 0)
    without = [ids[number] for number in range(MESSAGES) if number % 7 == 0]
    assert adapters.imap_views.get_many(BOB, without) == {}
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views,
                      store=adapters.store, references=adapters.references) as imap:
        client = imap.logged_in()
        client.select("INBOX")
        with counted() as first:
            found = _found(client, "FROM", "s0@crepes.fr")
        with counted() as again:
            found_again = _found(client, "FROM", "s0@crepes.fr")
        client.logout()
    assert found == found_again == _expected(lambda n: n % 5 == 0)
    assert len(first.of("s3", "GetObject")) == len(without)
    made = adapters.imap_views.get_many(BOB, without)
    assert set(made) == set(without)
    assert made[without[1]] == make_view(_raw(7))
    assert again.of("s3") == []


def test_a_listing_of_more_than_a_thousand_messages_is_read_without_a_limit(stack) -> None:
    # GIVEN 1,050 messages in the Inbox (written straight into the table: filing them one
    # transaction at a time would take moto minutes)
    count = 1050
    table = stack.outputs["MailboxTableName"]
    client = clients.dynamodb_client()
    items = [codec.message_item(StoredMessage(
        account=BOB, message_id=new_message_id(), folder="Inbox",
        received_at=datetime.now(UTC), raw_key=f"raw/{uid}", size=100 + uid,
        summary=summarise(_raw(uid)), accepted_id=None, uid=uid, modseq=uid), 0)
        for uid in range(1, count + 1)]
    for start in range(0, count, 25):
        client.batch_write_item(RequestItems={table: [
            {"PutRequest": {"Item": item}} for item in items[start:start + 25]]})
    client.transact_write_items(TransactItems=[folder_change(
        table, FolderState(BOB, "Inbox", False, 0, 1), total=count, unread=count,
        arrivals=count)])
    adapters = aws_adapters()
    with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views,
                      store=adapters.store, references=adapters.references) as imap:
        session = imap.logged_in()
        # WHEN a client selects it and lists it
        with counted() as requests:
            assert session.select("INBOX") == ("OK", [str(count).encode()])
            status, listed = session.uid("FETCH", "1:*", "(FLAGS)")
        session.logout()
    # THEN every UID is there, read in DynamoDB's pages: no Limit (1,000 before)
    assert status == "OK"
    assert sorted(int(line.split(b"UID ")[1].split(b")")[0]) for line in listed
                  if isinstance(line, bytes)) == list(range(1, count + 1))
    listings = [params for params in requests.of("dynamodb", "Query")
                if params.get("IndexName") == UID_INDEX]
    assert listings and all("Limit" not in params for params in listings)
    assert len(listings) <= 2  # 1,050 entries of some 200 bytes: within one 1 MB page
