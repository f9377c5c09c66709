"""The names a DNS blocklist is asked (RFC 5782), and the zones MAILPIPE_DNSBL names."""

from __future__ import annotations

from edge.smtp.junk_signals import query_name, zones_of


def test_ipv4_is_asked_by_its_octets_reversed() -> None:
    # RFC 5782 §2.1's example.
    assert query_name("192.0.2.99", "dnsbl.example.net") == "99.2.0.192.dnsbl.example.net"


def test_ipv6_is_asked_by_its_32_nibbles_reversed() -> None:
    # RFC 5782 §2.4's example address.
    assert query_name("2001:db8:1:2:3:4:567:89ab", "ugly.example.com") == (
        "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com")


def test_an_ipv4_client_on_a_dual_stack_socket_is_asked_as_ipv4() -> None:
    assert query_name("::ffff:127.0.0.2", "bl.test") == "2.0.0.127.bl.test"


def test_what_is_not_an_address_is_not_asked() -> None:
    assert query_name("", "bl.test") is None
    assert query_name("unknown", "bl.test") is None


def test_zones_are_each_named_once_in_lower_case_in_their_order() -> None:
    assert zones_of(" zen.spamhaus.org, BL.test.,,zen.spamhaus.org ") == (
        "zen.spamhaus.org", "bl.test")
    assert zones_of("") == zones_of(None) == ()
