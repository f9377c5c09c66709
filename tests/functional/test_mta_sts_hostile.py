"""A receiving domain's hostile MTA-STS policy host or DNS against the deliver function
(issue 28 review): a policy fetch ends within its own stated budget, and neither a policy
host nor an MX host is reached at an address inside our network."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailcore.adapters.dns_resolver import DnsServer, sync_resolver
from mailcore.adapters.mta_sts_source import HttpsPolicySource, PolicyUnavailable
from mailcore.adapters.smtp_client import NoPublicAddress, public_address
from mailcore.domain.next_hop import NextHop
from tests.dns_support import Dnsmasq, Zone
from tests.mta_sts_support import TestCa


class DrippingPolicyHost:
    """An HTTPS server that answers every request one byte every `pause` seconds: a status
    line, then an endless header."""

    def __init__(self, context, pause: float) -> None:  # type: ignore[no-untyped-def]
        self._context = context
        self._pause = pause
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stopped.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._drip, args=(raw,), daemon=True).start()

    def _drip(self, raw: socket.socket) -> None:
        try:
            with self._context.wrap_socket(raw, server_side=True) as tls:
                tls.recv(4096)
                answer = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000
                for byte in answer:
                    if self._stopped.is_set():
                        return
                    tls.sendall(bytes([byte]))
                    time.sleep(self._pause)
        except OSError:
            return

    def __enter__(self) -> DrippingPolicyHost:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._listener.close()


@pytest.fixture
def ca(tmp_path: Path) -> Iterator[TestCa]:
    yield TestCa(tmp_path)


def test_a_policy_host_that_drips_its_headers_is_given_up_within_the_fetch_budget(
        ca: TestCa) -> None:
    zone = Zone(a={"mta-sts.slow.test": ["127.0.0.1"]})
    with Dnsmasq(zone) as dns, DrippingPolicyHost(ca.server_context("mta-sts.slow.test"),
                                                  pause=0.1) as host:
        source = HttpsPolicySource(sync_resolver(DnsServer.parse(dns.address)),
                                   ca.client_context(), port=host.port, public_only=False,
                                   timeout=0.5)
        outcome: list[BaseException | str] = []

        def fetch() -> None:
            try:
                outcome.append(source.fetch("slow.test"))
            except BaseException as error:
                outcome.append(error)

        fetching = threading.Thread(target=fetch, daemon=True)
        started = time.monotonic()
        fetching.start()
        fetching.join(timeout=5)
        took = time.monotonic() - started
    # (leaving the with: the host stops dripping, so a fetch still running ends now)
    fetching.join(timeout=10)
    # "twice that the whole fetch" (mta_sts_source.FETCH_SECONDS): 1 s here, and slack
    assert took < 3, (took, outcome)
    assert isinstance(outcome[0], PolicyUnavailable), outcome
    assert took < 3, took


@pytest.mark.parametrize("address", [
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254, the instance metadata service
    "::127.0.0.1",  # IPv4-compatible loopback
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
])
def test_an_mx_address_that_embeds_a_private_ipv4_address_is_not_public(address: str) -> None:
    with pytest.raises(NoPublicAddress):
        public_address(NextHop("mx.hostile.test", 25), lambda host: [address])
