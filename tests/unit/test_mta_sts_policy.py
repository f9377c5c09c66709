"""MTA-STS (RFC 8461) records and policies as the RFC writes them, and what a policy leaves
of a domain's MX hosts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailcore.domain.mta_sts import (
    MAX_AGE_LIMIT,
    CachedPolicy,
    Mode,
    Policy,
    PolicyError,
    mx_matches,
    parse_policy,
    policy_id_of,
    restrict,
)
from mailcore.domain.next_hop import NextHop

# §3.2's example, with CRLF line endings as served.
EXAMPLE = ("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
           "mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n")


def test_the_rfc_example_policy_parses():
    policy = parse_policy(EXAMPLE)
    assert policy == Policy(Mode.ENFORCE, ("mail.example.com", "*.example.net",
                                           "backupmx.example.com"), 604800)


def test_lf_line_endings_unknown_keys_and_a_repeated_key_are_taken_as_the_rfc_says():
    policy = parse_policy("version: STSv1\nmode: testing\nmode: enforce\nfuture: x\n"
                          "mx: MX.Example.COM.\nmax_age: 86400\n")
    assert policy == Policy(Mode.TESTING, ("mx.example.com",), 86400)


def test_mode_none_needs_no_mx():
    assert parse_policy("version: STSv1\nmode: none\nmax_age: 0\n").mode is Mode.NONE


@pytest.mark.parametrize("text", [
    "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
    "mode: enforce\nmx: a.example\nmax_age: 1\n",
    "version: STSv1\nmode: enforcing\nmx: a.example\nmax_age: 1\n",
    "version: STSv1\nmode: enforce\nmax_age: 86400\n",  # enforce without an mx
    "version: STSv1\nmode: enforce\nmx: a.example\n",  # no max_age
    f"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: {MAX_AGE_LIMIT + 1}\n",
    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -5\n",
    "version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 1\n",
    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\nthis line has no colon\n",
    "<html><body>Not Found</body></html>",
])
def test_what_is_not_a_valid_policy_is_refused(text):
    with pytest.raises(PolicyError):
        parse_policy(text)


def test_max_age_may_be_the_limit():
    text = f"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: {MAX_AGE_LIMIT}\n"
    assert parse_policy(text).max_age == MAX_AGE_LIMIT


@pytest.mark.parametrize(("pattern", "host", "matches"), [
    ("mail.example.com", "mail.example.com", True),
    ("mail.example.com", "MAIL.Example.com.", True),
    ("mail.example.com", "mail2.example.com", False),
    ("*.example.net", "mx1.example.net", True),
    ("*.example.net", "example.net", False),  # the wildcard is one whole label
    ("*.example.net", "a.b.example.net", False),  # and only one
    ("*.example.net", "mx1.example.net.evil.example", False),
    ("*.example.net", "mx1-example.net", False),
])
def test_mx_patterns_match_a_name_or_one_label_of_a_wildcard(pattern, host, matches):
    assert mx_matches(pattern, host) is matches


@pytest.mark.parametrize(("records", "policy_id"), [
    (["v=STSv1; id=20160831085700Z;"], "20160831085700Z"),
    (["v=spf1 -all", "v=STSv1;id=abc"], "abc"),  # someone else's record beside it
    (["v=STSv1; id=abc", "v=STSv1; id=def"], None),  # two: none (§3.1)
    (["v=STSv1; id=not-alnum"], None),
    (["v=STSv1; id=" + "a" * 33], None),
    (["v=STSv1"], None),
    (["v=STSv10; id=abc"], None),
    (["v=STSv10; id=abc", "v=STSv1 ; id=def"], "def"),  # only records of version STSv1 count
    ([], None),
])
def test_the_txt_record_gives_the_policy_id(records, policy_id):
    assert policy_id_of(records) == policy_id


def test_a_cached_policy_expires_after_max_age_and_survives_its_document():
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    cached = CachedPolicy.fetched(parse_policy(EXAMPLE), "20160831085700Z", now)
    assert cached.valid_at(now + timedelta(seconds=604799))
    assert not cached.valid_at(now + timedelta(seconds=604800))
    assert CachedPolicy.from_document(cached.to_document()) == cached


HOPS = [NextHop("mail.example.com", 25), NextHop("mx.evil.example", 25),
        NextHop("mx1.example.net", 25)]


def test_enforce_keeps_the_allowed_mx_hosts_each_demanding_valid_tls():
    restriction = restrict(parse_policy(EXAMPLE), "example.com", HOPS)
    assert [hop.host for hop in restriction.hops] == ["mail.example.com", "mx1.example.net"]
    assert {hop.valid_tls_required_by for hop in restriction.hops} == {
        "MTA-STS policy of example.com"}
    assert restriction.refusal is None


def test_enforce_with_no_allowed_mx_refuses_naming_the_policy_and_the_host():
    restriction = restrict(parse_policy(EXAMPLE), "example.com", [HOPS[1]])
    assert restriction.hops == []
    assert restriction.refusal == ("4.7.5 MTA-STS policy of example.com: mx.evil.example "
                                   "is not an allowed MX")


def test_testing_and_none_leave_the_hops_as_they_are():
    testing = parse_policy(EXAMPLE.replace("enforce", "testing"))
    restriction = restrict(testing, "example.com", [HOPS[1]])
    assert restriction.hops == [HOPS[1]] and restriction.refusal is None
    assert restriction.would_fail is not None and "mx.evil.example" in restriction.would_fail
    for policy in (None, parse_policy("version: STSv1\nmode: none\nmax_age: 60\n")):
        assert restrict(policy, "example.com", HOPS) == restrict(None, "example.com", HOPS)
        assert restrict(policy, "example.com", HOPS).hops == HOPS
