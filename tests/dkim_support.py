"""Checking what we sign as a receiver would: the DKIM keys' records published in the tests'
dnsmasq, dkimpy verifying each signature against them, and OpenDKIM's opendkim-testmsg
(a verifier that is not the library we sign with) against the same records.

opendkim-testmsg asks the system resolver (glibc's res_ninit reads /etc/resolv.conf, port
53 only, with no option or variable to name another file), so it runs in a mount namespace
of its own where a resolv.conf naming the tests' dnsmasq is bound over /etc/resolv.conf,
and that dnsmasq listens on port 53 of a loopback address no other test uses."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import dkim
import dkim.util

from mailcore.adapters.dns_resolver import DnsServer, sync_resolver
from mailcore.authentication.signing_keys import SigningKey
from tests.dns_support import Dnsmasq, Zone

OPENDKIM_TESTMSG = shutil.which("opendkim-testmsg") or "/usr/sbin/opendkim-testmsg"
UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"
_FIELD = re.compile(rb"^([^:\s]+):.*?\r\n(?![ \t])", re.DOTALL | re.MULTILINE)


def published(keys: list[SigningKey], zone: Zone | None = None) -> Zone:
    zone = zone or Zone()
    for key in keys:
        zone.add_txt(key.record_name, key.txt_record)
    return zone


def header_fields(raw: bytes) -> list[tuple[str, bytes]]:
    """(name, the whole field with its CRLF) of each header field, in order."""
    head = raw[:raw.index(b"\r\n\r\n") + 2]
    return [(match.group(1).decode().lower(), match.group(0))
            for match in _FIELD.finditer(head)]


def signature_tags(raw: bytes) -> list[dict[str, str]]:
    """The tags of each DKIM-Signature field, in order (b=, bh= and h= unfolded)."""
    return [{name.decode(): re.sub(r"\s+", "", value.decode()) if name in (b"b", b"bh")
             else " ".join(value.decode().split())
             for name, value in dkim.util.parse_tag_value(
                 field.split(b":", 1)[1].strip()).items()}
            for name, field in header_fields(raw) if name == "dkim-signature"]


def with_one_signature(raw: bytes, index: int) -> bytes:
    """The message with every DKIM-Signature field but the index-th left out."""
    fields = header_fields(raw)
    signatures = [field for name, field in fields if name == "dkim-signature"]
    body = raw[raw.index(b"\r\n\r\n") + 2:]
    return b"".join(field for name, field in fields
                    if name != "dkim-signature" or field == signatures[index]) + body


def dkimpy_verifies(raw: bytes, dns_address: str, index: int) -> bool:
    """dkimpy's verdict on the index-th signature, its key looked up in the test DNS."""
    resolver = sync_resolver(DnsServer.parse(dns_address))

    def txt(name: bytes, timeout: float = 5) -> bytes | None:
        import dns.resolver

        try:
            answer = resolver.resolve(name.decode().rstrip("."), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(b"".join(record.strings) for record in answer)

    try:
        return bool(dkim.DKIM(raw).verify(idx=index, dnsfunc=txt))
    except dkim.ValidationError:  # a body hash that does not match: a fail all the same
        return False


class OpenDkim:
    """A dnsmasq on port 53 of a loopback address of its own, serving `zone`, and
    opendkim-testmsg resolving through it."""

    def __init__(self, zone: Zone) -> None:
        host = f"127.53.{random.randint(1, 254)}.{random.randint(1, 254)}"
        self.dns = Dnsmasq(zone, host=host, port=53)
        self._folder = Path(tempfile.mkdtemp(prefix="mailpipe-opendkim-"))
        self._resolv_conf = self._folder / "resolv.conf"
        self._resolv_conf.write_text(f"nameserver {host}\noptions attempts:1 timeout:3\n")

    def verify(self, raw: bytes) -> subprocess.CompletedProcess[bytes]:
        """opendkim-testmsg's verification of `raw`: status 0 when a signature passed."""
        return subprocess.run(
            [UNSHARE, "--mount", "sh", "-c",
             'mount --bind "$0" /etc/resolv.conf && exec "$1"', str(self._resolv_conf),
             OPENDKIM_TESTMSG],
            input=raw, capture_output=True, timeout=30, check=False)

    def __enter__(self) -> OpenDkim:
        self.dns.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.dns.__exit__(kind, error, trace)
        shutil.rmtree(self._folder, ignore_errors=True)
