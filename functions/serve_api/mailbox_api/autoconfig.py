"""Thunderbird's autoconfig (and every client that reads it, such as K-9 and Evolution):
a user types an address and a password, and the client finds IMAP and submission here.
Served at /.well-known/autoconfig/mail/config-v1.1.xml (asked of the mail domain) and
/mail/config-v1.1.xml (asked of autoconfig.<domain>); the README's DNS section says which
names to point at the API."""

from __future__ import annotations

import os
from xml.etree import ElementTree

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from mailcore.wiring import aws_adapters

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]
XML = "application/xml"


def client_config(hostname: str, domains: tuple[str, ...], imaps: bool) -> bytes:
    root = ElementTree.Element("clientConfig", version="1.1")
    provider = ElementTree.SubElement(root, "emailProvider", id=domains[0])
    for domain in domains:
        ElementTree.SubElement(provider, "domain").text = domain
    ElementTree.SubElement(provider, "displayName").text = f"mailpipe ({domains[0]})"
    servers = [("incomingServer", "imap", 993, "SSL")] if imaps else []
    servers += [("incomingServer", "imap", 143, "STARTTLS"),
                ("outgoingServer", "smtp", 587, "STARTTLS")]
    for element, kind, port, socket_type in servers:
        server = ElementTree.SubElement(provider, element, type=kind)
        for name, value in (("hostname", hostname), ("port", str(port)),
                            ("socketType", socket_type),
                            ("authentication", "password-cleartext"),
                            ("username", "%EMAILADDRESS%")):
            ElementTree.SubElement(server, name).text = value
    return bytes(ElementTree.tostring(root, encoding="utf-8", xml_declaration=True))


def _answer() -> Response[bytes]:
    settings = aws_adapters().settings
    body = client_config(settings.hostname, tuple(sorted(settings.domains)),
                         os.environ.get("MAILPIPE_IMAPS_OFFERED", "") == "true")
    return Response(status_code=200, content_type=XML, body=body,
                    headers={"Cache-Control": "public, max-age=3600"})


@router.get("/.well-known/autoconfig/mail/config-v1.1.xml")
def well_known() -> Response[bytes]:
    return _answer()


@router.get("/mail/config-v1.1.xml")
def autoconfig_host() -> Response[bytes]:
    return _answer()
