"""What both edge processes (SMTP and IMAP) share about listening: the networks trusted to
send PROXY headers, the largest message either takes, and the health endpoint each answers
on its own port."""

from __future__ import annotations

import asyncio
import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_MESSAGE_SIZE = 25 * 1024 * 1024
# Where PROXY headers may come from unless MAILPIPE_PROXY_TRUSTED_NETWORKS says (the
# template passes the VPC's CIDR, where the load balancer's nodes are).
DEFAULT_PROXY_TRUSTED = "127.0.0.0/8,::1/128"


def networks(text: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.split(",") if part.strip())


async def answer_health(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        draining: bool) -> None:
    """The load balancer's and the container's health check: 200 while serving, 503 once
    stopping (each edge process, SMTP and IMAP, answers on its own port)."""
    try:
        await asyncio.wait_for(reader.readline(), 5)
    except (TimeoutError, ConnectionError):
        writer.close()
        return
    status, body = ("503 Service Unavailable", "draining") if draining else ("200 OK", "ok")
    writer.write(f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}".encode())
    try:
        await writer.drain()
    finally:
        writer.close()
