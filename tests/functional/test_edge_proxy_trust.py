"""The edge configured as template.yaml configures it in AWS, driven over real sockets: a
PROXY header counts only from the load balancer's fixed addresses. Loopback stands in for
the VPC (127.0.0.0/16): 127.0.0.2 and 127.0.0.3 are the load balancer's addresses in two
subnets, other 127.0.x addresses the tasks and other hosts beside it."""

from __future__ import annotations

import socket

import pytest

from edge.smtp.server import EdgeConfig
from mailcore.adapters.memory.store import InMemoryMessageStore
from tests.edge_support import Wire, proxy_v2_header, running_edge
from tests.unit.test_template_edge_trust import deployed, edge_environments

LOAD_BALANCER = ["127.0.0.2", "127.0.0.3"]
CLIENT = "203.0.113.7"  # the real client, on the Internet
MESSAGE = b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: hi\r\n\r\nhello\r\n.\r\n"


def template_config() -> EdgeConfig:
    resolver = deployed(["subnet-0a1b2c3d", "subnet-1a1b2c3d"], LOAD_BALANCER,
                        EdgeVpcCidr="127.0.0.0/16")
    configs = (EdgeConfig.from_environ(environment, "hamburger.edu")
               for environment in edge_environments(resolver))
    return next(config for config in configs if config.proxy_protocol)


class FromWire(Wire):
    """A raw SMTP connection from a chosen local address."""

    def __init__(self, port: int, source: str) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10,
                                               source_address=(source, 0))
        self.reader = self.socket.makefile("rb")


def send_message(wire: Wire) -> None:
    wire.command(b"EHLO crepes.fr")
    assert wire.command(b"MAIL FROM:<alice@crepes.fr>")[-1].startswith(b"250")
    assert wire.command(b"RCPT TO:<bob@hamburger.edu>")[-1].startswith(b"250")
    assert wire.command(b"DATA")[0].startswith(b"354")
    wire.send(MESSAGE)
    assert wire.reply()[-1].startswith(b"250")


@pytest.mark.parametrize("balancer", LOAD_BALANCER)
def test_the_real_client_comes_from_the_proxy_header_of_either_load_balancer_address(balancer):
    config = template_config()
    store = InMemoryMessageStore()
    with running_edge(store, proxy_protocol=True, proxy_trusted=config.proxy_trusted) as edge:
        wire = FromWire(edge.mx_port, balancer)
        wire.send(proxy_v2_header(CLIENT, 40000))
        assert wire.reply()[0].startswith(b"220")
        send_message(wire)
    [key] = store.message_keys()
    assert store.get_envelope(key).peer == CLIENT


@pytest.mark.parametrize("neighbour", ["127.0.0.4", "127.0.0.1", "127.0.1.2"])
def test_a_proxy_header_from_another_host_beside_the_load_balancer_is_not_believed(neighbour):
    # In AWS these are a task or another host in the load balancer's subnets, which the
    # VPC-wide trust of before let name any client address (and so pass its limits).
    config = template_config()
    store = InMemoryMessageStore()
    with running_edge(store, proxy_protocol=True, proxy_trusted=config.proxy_trusted) as edge:
        # Greeted at once: the edge awaits no header from it.
        wire = FromWire(edge.mx_port, neighbour)
        assert wire.reply()[0].startswith(b"220")
        wire.send(proxy_v2_header(CLIENT, 40000))
        with pytest.raises(ConnectionError):
            while True:
                wire.reply()
        # What it sends is its own session, under its own address.
        wire = FromWire(edge.mx_port, neighbour)
        assert wire.reply()[0].startswith(b"220")
        send_message(wire)
    [key] = store.message_keys()
    assert store.get_envelope(key).peer == neighbour
