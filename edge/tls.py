"""TLS for STARTTLS: a certificate and key from configuration, or a self-signed pair
for local runs."""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def context_from_environ(environ: Mapping[str, str], hostname: str) -> ssl.SSLContext | None:
    """The TLS context of an edge process (SMTP or IMAP, each its own container): files
    named by MAILPIPE_TLS_CERT and MAILPIPE_TLS_KEY, else the PEM contents that ECS passes
    from Secrets Manager, else (locally) a self-signed pair; None without any of them."""
    cert_name, key_name = environ.get("MAILPIPE_TLS_CERT"), environ.get("MAILPIPE_TLS_KEY")
    cert, key = (Path(cert_name), Path(key_name)) if cert_name and key_name else (None, None)
    if (cert is None or key is None) and environ.get("MAILPIPE_TLS_CERT_PEM"):
        cert, key = _write_pem_pair(environ["MAILPIPE_TLS_CERT_PEM"],
                                    environ.get("MAILPIPE_TLS_KEY_PEM", ""))
    if (cert is None or key is None) and environ.get("MAILPIPE_TLS_SELF_SIGNED_DIR"):
        cert, key = ensure_self_signed(Path(environ["MAILPIPE_TLS_SELF_SIGNED_DIR"]), hostname)
    return server_context(cert, key) if cert and key else None


def _write_pem_pair(cert_pem: str, key_pem: str) -> tuple[Path, Path]:
    """ECS hands the certificate over from Secrets Manager as variables; ssl wants files."""
    folder = Path(tempfile.mkdtemp(prefix="mailpipe-tls-"))
    cert, key = folder / "cert.pem", folder / "key.pem"
    cert.write_text(cert_pem)
    key.touch(mode=0o600)
    key.write_text(key_pem)
    return cert, key


def ensure_self_signed(directory: Path, hostname: str) -> tuple[Path, Path]:
    """Create (once) a self-signed certificate for `hostname` and 127.0.0.1."""
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    directory.mkdir(parents=True, exist_ok=True)
    # Two local stacks starting at once share the folder: one makes the pair.
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cert_file.exists() and key_file.exists()):
            _write_pair(cert_file, key_file, hostname)
    return cert_file, key_file


def _write_pair(cert_file: Path, key_file: Path, hostname: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName(hostname), x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    key_file.chmod(0o600)
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
