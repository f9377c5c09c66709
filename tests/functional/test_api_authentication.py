"""The message detail says what our edge verified of a message (its Authentication-Results
field, RFC 8601), believing only the field with our authserv-id, the edge's hostname."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.services.filing import file_inbound
from mailcore.wiring import aws_adapters
from tests.conftest import load_function
from tests.functional.api_support import BOB, call

VERIFIED = (
    "{ours}; spf=pass smtp.mailfrom=crepes.fr;\r\n"
    "\tdkim=pass header.d=crepes.fr header.s=mp20261207r header.a=rsa-sha256"
    " header.b=abcd1234;\r\n"
    "\tdkim=pass header.d=crepes.fr header.s=mp20261207e header.a=ed25519-sha256"
    " header.b=efgh5678;\r\n"
    "\tdmarc=pass (p=quarantine) header.from=crepes.fr")
SPOOFED = ("{ours}; spf=pass smtp.mailfrom=evil.example; dkim=none;"
           " dmarc=fail (p=none) header.from=hamburger.edu")


@pytest.fixture
def api(stack, monkeypatch):
    # The API runs with the edge's hostname (EdgeHostname), which names our field.
    monkeypatch.setenv("MAILPIPE_HOSTNAME",
                       stack.functions["ServeApiFunction"].environment["MAILPIPE_HOSTNAME"])
    aws_adapters.cache_clear()
    return load_function("serve_api")


def _ours() -> str:
    return aws_adapters().settings.hostname


def _file_as_the_edge_stores(results: list[str], sender: str = "Alice <alice@crepes.fr>",
                             ) -> str:
    """A message from outside with these Authentication-Results values on top (the edge's
    first), filed into Bob's mailbox as file_message files it; its id."""
    fields = "".join(f"Authentication-Results: {value}\r\n" for value in results)
    raw = (f"{fields}Received: from crepes.fr ([192.0.2.1]) by {_ours()}\r\n"
           f"From: {sender}\r\nTo: {BOB}\r\nSubject: checked\r\n"
           f"Message-ID: <{new_message_id()}@crepes.fr>\r\n\r\nbody\r\n")
    adapters = aws_adapters()
    envelope = Envelope(mail_from="alice@crepes.fr", rcpt_tos=(BOB,), peer="192.0.2.1",
                        helo="crepes.fr", tls=True, received_at=datetime.now(UTC))
    key = adapters.store.put(new_message_id(), raw.encode(), envelope)
    return file_inbound(key, adapters.store, adapters.mailboxes, adapters.domains,
                        references=adapters.references,
                        views=adapters.imap_views).message_id


def _authentication(api, message_id: str):
    reply = call(api, "GET", f"/v1/messages/{message_id}")  # checked against openapi.yaml
    assert reply.status == 200
    return reply.json["authentication"]


def test_the_detail_shows_each_methods_verdict_and_whether_the_from_is_verified(api):
    verified = _file_as_the_edge_stores([VERIFIED.format(ours=_ours())])
    spoofed = _file_as_the_edge_stores([SPOOFED.format(ours=_ours())],
                                       sender="CEO <ceo@hamburger.edu>")
    own = _file_as_the_edge_stores([f"{_ours()}; auth=pass smtp.auth=alice@hamburger.edu"],
                                   sender="alice@hamburger.edu")
    unchecked = _file_as_the_edge_stores([])

    assert _authentication(api, verified) == {
        "from_domain": "crepes.fr", "from_verified": True,
        "spf": {"result": "pass", "domain": "crepes.fr"},
        "dkim": [{"result": "pass", "domain": "crepes.fr", "selector": "mp20261207r",
                  "algorithm": "rsa-sha256"},
                 {"result": "pass", "domain": "crepes.fr", "selector": "mp20261207e",
                  "algorithm": "ed25519-sha256"}],
        "dmarc": {"result": "pass", "from_domain": "crepes.fr", "policy": "quarantine"},
        "auth": None,
    }
    shown = _authentication(api, spoofed)
    assert (shown["from_domain"], shown["from_verified"]) == ("hamburger.edu", False)
    assert shown["dmarc"] == {"result": "fail", "from_domain": "hamburger.edu",
                              "policy": "none"}
    assert _authentication(api, own)["auth"] == {"result": "pass",
                                                 "account": "alice@hamburger.edu"}
    assert _authentication(api, own)["from_verified"] is True
    assert _authentication(api, unchecked) is None


def test_only_our_own_field_is_believed_and_a_hostile_one_fails_nothing(api):
    forged_elsewhere = "mx.crepes.fr; dmarc=pass header.from=hamburger.edu"
    forged_below = f"{_ours()}; dmarc=pass header.from=hamburger.edu"
    forged = _file_as_the_edge_stores(
        [SPOOFED.format(ours=_ours()), forged_elsewhere, forged_below],
        sender="CEO <ceo@hamburger.edu>")
    only_foreign = _file_as_the_edge_stores([forged_elsewhere],
                                            sender="CEO <ceo@hamburger.edu>")
    hostile = _file_as_the_edge_stores(
        [f"{_ours()}; dmarc=pass (" + "(" * 3000 + " header.from=hamburger.edu"],
        sender="CEO <ceo@hamburger.edu>")

    shown = _authentication(api, forged)
    assert (shown["from_verified"], shown["dmarc"]["result"]) == (False, "fail")
    assert _authentication(api, only_foreign) is None
    shown = _authentication(api, hostile)
    assert shown["from_verified"] is False and shown["dmarc"] is None
