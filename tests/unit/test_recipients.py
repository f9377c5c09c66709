"""The RCPT TO decision: only hosted accounts are ever accepted."""

import pytest

from mailcore.domain.address import Address, parse_address
from mailcore.errors import InvalidAddress
from mailcore.services.recipients import HostedDomains, hosted_candidate

DOMAINS = HostedDomains.of(["hamburger.edu"])


def test_hosted_address_is_a_candidate_in_canonical_form():
    assert hosted_candidate("Bob@Hamburger.EDU", DOMAINS) == "bob@hamburger.edu"


def test_foreign_domain_is_never_a_candidate():
    # (An unknown account of a hosted domain is the edge's 550 5.1.1: see its tests.)
    assert hosted_candidate("alice@crepes.fr", DOMAINS) is None


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
    assert hosted_candidate(vector, DOMAINS) is None


@pytest.mark.parametrize(
    "text", ["", "bob", "@hamburger.edu", "bob@", "a b@c.d", "x" * 65 + "@a.b"]
)
def test_malformed_addresses_do_not_parse(text):
    with pytest.raises(InvalidAddress):
        parse_address(text)


def test_address_is_lower_cased_and_unbracketed():
    assert parse_address("<Alice@Crepes.FR>") == Address("alice", "crepes.fr")
