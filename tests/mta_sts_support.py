"""MTA-STS's other side for tests, all on loopback: a private certificate authority (made
with `cryptography`), the HTTPS server of the policy hosts (http.server over ssl), and
receiving MTAs (aiosmtpd) with or without STARTTLS.

    ca = TestCa(folder)
    with PolicyServer(ca.server_context("mta-sts.hamburger.edu"), policies) as web:
        ... HttpsPolicySource(resolver, ca.client_context(), port=web.port, public_only=False)
"""

from __future__ import annotations

import datetime
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mailpipe.local.launcher import free_port

POLICY_PATH = "/.well-known/mta-sts.txt"


class TestCa:
    """A certificate authority of its own: what it signs verifies against `bundle` (the
    PEM file MAILPIPE_MTA_STS_CA_BUNDLE names) and nothing else."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, folder: Path, name: str = "mailpipe test CA") -> None:
        self.folder = folder
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self._certificate = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()),
                           critical=False)
            .sign(self._key, hashes.SHA256()))
        self.bundle = folder / f"{name.replace(' ', '-')}.pem"
        self.bundle.write_bytes(self._certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, *names: str) -> tuple[Path, Path]:
        """A server certificate for `names` (its SANs) and its key: (cert file, key file)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self._certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256()))
        cert_file = self.folder / f"{names[0]}.{id(key)}.crt"
        key_file = cert_file.with_suffix(".key")
        cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_file, key_file

    def server_context(self, *names: str) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*map(str, self.issue(*names)))
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.bundle))


@dataclass(frozen=True)
class Served:
    """An answer other than a plain 200 text/plain policy: a redirect, another type."""

    body: str
    status: int = 200
    content_type: str = "text/plain; charset=utf-8"
    location: str | None = None
    drip: float = 0.0  # seconds between lines of the body: a host that sends slowly


class _PolicyHandler(BaseHTTPRequestHandler):
    server: _PolicyHttpServer

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        self.server.requests.append((host, self.path))
        policy = self.server.policies.get(host)
        if self.path != POLICY_PATH or policy is None:
            self.send_error(404)
            return
        served = policy if isinstance(policy, Served) else Served(policy)
        body = served.body.encode()
        self.send_response(served.status)
        self.send_header("Content-Type", served.content_type)
        if served.location:
            self.send_header("Location", served.location)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for line in body.splitlines(keepends=True):
            time.sleep(served.drip)
            self.wfile.write(line)
            self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _PolicyHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], policies: dict[str, str | Served]) -> None:
        super().__init__(address, _PolicyHandler)
        self.policies = policies
        self.requests: list[tuple[str, str]] = []


class PolicyServer:
    """HTTPS on loopback serving `policies` (policy host -> policy text) at the RFC's path;
    `requests` lists each (host, path) asked for."""

    def __init__(self, context: ssl.SSLContext, policies: dict[str, str | Served]) -> None:
        self._server = _PolicyHttpServer(("127.0.0.1", 0), policies)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        # Polled often: stopping waits for the loop's next turn.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def policies(self) -> dict[str, str | Served]:
        return self._server.policies

    def fetches(self, host: str) -> int:
        return sum(asked == host for asked, _ in self._server.requests)

    def __enter__(self) -> PolicyServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


@dataclass
class Received:
    recipients: list[str]
    tls: bool  # arrived after STARTTLS


@dataclass
class _Recorder:
    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(Received(list(envelope.rcpt_tos), session.ssl is not None))
        return "250 2.0.0 Ok: queued"


class Receiver(Controller):
    """A receiving MTA on loopback: STARTTLS with `tls` (None: not offered); counts the
    connections made to it and keeps what it received."""

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        self.recorder = _Recorder()
        self.connections = 0
        super().__init__(self.recorder, hostname="127.0.0.1", port=free_port(),
                         tls_context=tls, ready_timeout=10)

    def factory(self) -> Any:
        self.connections += 1
        return super().factory()

    def start(self) -> None:
        super().start()
        self.connections = 0  # Controller's own check that it listens is no client

    @property
    def messages(self) -> list[Received]:
        return self.recorder.messages
