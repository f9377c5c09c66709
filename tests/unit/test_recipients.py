"""The RCPT TO decision: only hosted accounts are ever accepted."""

import pytest

from mailcore.adapters.memory.directory import InMemoryAccountDirectory
from mailcore.domain.address import Address, parse_address
from mailcore.errors import InvalidAddress
from mailcore.services.recipients import HostedDomains, RecipientVerdict, judge_recipient

DOMAINS = HostedDomains.of(["hamburger.edu"])
DIRECTORY = InMemoryAccountDirectory({"bob@hamburger.edu": "pw"})


def test_hosted_account_is_accepted_in_canonical_form():
    verdict, canonical = judge_recipient("Bob@Hamburger.EDU", DOMAINS, DIRECTORY)
    assert verdict is RecipientVerdict.ACCEPT
    assert canonical == "bob@hamburger.edu"


def test_unknown_account_of_hosted_domain_is_no_such_account():
    assert judge_recipient("carol@hamburger.edu", DOMAINS, DIRECTORY)[0] is (
        RecipientVerdict.NO_SUCH_ACCOUNT
    )


def test_foreign_domain_is_relay_denied():
    assert judge_recipient("alice@crepes.fr", DOMAINS, DIRECTORY)[0] is (
        RecipientVerdict.RELAY_DENIED
    )


@pytest.mark.parametrize(
    "vector",
    [
        "bob%crepes.fr@hamburger.edu",  # percent hack
        "crepes.fr!bob@hamburger.edu",  # bang path
        '"bob@crepes.fr"@hamburger.edu',  # quoted local part with @
        "@hamburger.edu:bob@crepes.fr",  # source route
        "bob@[127.0.0.1]",  # IP literal
        "bob@crepes.fr@hamburger.edu",  # two @
        "bob@hamburger.edu (comment)",  # comment
        "bob(comment)@hamburger.edu",
        "bob@crepes.fr.",  # trailing dot, foreign
    ],
)
def test_relay_vectors_are_never_accepted(vector):
    verdict, _ = judge_recipient(vector, DOMAINS, DIRECTORY)
    assert verdict is not RecipientVerdict.ACCEPT


@pytest.mark.parametrize(
    "text", ["", "bob", "@hamburger.edu", "bob@", "a b@c.d", "x" * 65 + "@a.b"]
)
def test_malformed_addresses_do_not_parse(text):
    with pytest.raises(InvalidAddress):
        parse_address(text)


def test_address_is_lower_cased_and_unbracketed():
    assert parse_address("<Alice@Crepes.FR>") == Address("alice", "crepes.fr")
