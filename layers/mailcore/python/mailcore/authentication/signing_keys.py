"""DKIM signing keys: two per hosted domain, rsa-sha256 (2048 bits) and ed25519-sha256
(RFC 8463), each under its own selector; kept as one JSON document (a Secrets Manager
secret in AWS, made at deploy by the keys custom resource; under the state folder and in
moto's Secrets Manager locally, made by `mailpipe up`)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

RSA = "rsa-sha256"
ED25519 = "ed25519-sha256"
ALGORITHMS = (RSA, ED25519)
RSA_BITS = 2048
DOCUMENT_VERSION = 1


class KeysDocumentError(ValueError):
    """The keys document cannot be read: signing is misconfigured."""


@dataclass(frozen=True)
class SigningKey:
    domain: str
    selector: str
    algorithm: str  # RSA or ED25519
    private_key: str  # PEM (RSA) or the base64 32-byte seed (Ed25519), as dkimpy signs with
    public_key: str  # base64, as the TXT record's p= carries it
    created: str = ""  # ISO date

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def txt_record(self) -> str:
        kind = "rsa" if self.algorithm == RSA else "ed25519"
        return f"v=DKIM1; k={kind}; p={self.public_key}"


def selector_for(algorithm: str, day: date) -> str:
    """mp20261207r / mp20261207e: dated, so a rotated key gets a new selector and the old
    record can stay published while mail signed with it is in flight."""
    return f"mp{day:%Y%m%d}{'r' if algorithm == RSA else 'e'}"


def new_keys(domain: str, day: date) -> list[SigningKey]:
    """A new RSA-2048 and Ed25519 key for `domain`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    rsa_private = rsa_key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption()).decode()
    # RFC 6376 §3.6.1: p= is the base64 of the DER SubjectPublicKeyInfo.
    rsa_public = base64.b64encode(rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_seed = ed_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                   serialization.NoEncryption())
    # RFC 8463 §4.2: p= is the base64 of the raw 32-byte public key.
    ed_public = ed_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)
    created = day.isoformat()
    return [
        SigningKey(domain, selector_for(RSA, day), RSA, rsa_private, rsa_public, created),
        SigningKey(domain, selector_for(ED25519, day), ED25519,
                   base64.b64encode(ed_seed).decode(), base64.b64encode(ed_public).decode(),
                   created),
    ]


def with_keys_for(keys: list[SigningKey], domains: list[str] | tuple[str, ...], day: date
                  ) -> list[SigningKey]:
    """`keys` plus new ones for each domain that has none: what deploy and `mailpipe up`
    do, so that adding a domain gives it keys and restarting keeps the published ones."""
    have = {key.domain for key in keys}
    added = [key for domain in domains if domain.lower() not in have
             for key in new_keys(domain.lower(), day)]
    return [*keys, *added]


def document_of(keys: list[SigningKey]) -> str:
    return json.dumps({"version": DOCUMENT_VERSION, "keys": [
        {"domain": key.domain, "selector": key.selector, "algorithm": key.algorithm,
         "private_key": key.private_key, "public_key": key.public_key,
         "created": key.created} for key in keys]}, sort_keys=True)


def keys_of(text: str) -> list[SigningKey]:
    """The keys a document holds; an empty or "{}" document holds none."""
    try:
        document: Any = json.loads(text) if text.strip() else {}
        if not isinstance(document, dict):
            raise KeysDocumentError("the DKIM keys document is not an object")
        if document and document.get("version") != DOCUMENT_VERSION:
            raise KeysDocumentError(f"unknown DKIM keys document {document.get('version')!r}")
        keys = [SigningKey(str(item["domain"]).lower(), str(item["selector"]),
                           str(item["algorithm"]), str(item["private_key"]),
                           str(item["public_key"]), str(item.get("created", "")))
                for item in document.get("keys", [])]
    except (ValueError, KeyError, TypeError) as exc:
        raise KeysDocumentError("the DKIM keys document cannot be read") from exc
    for key in keys:
        if key.algorithm not in ALGORITHMS:
            raise KeysDocumentError(f"unknown DKIM algorithm {key.algorithm!r}")
    return keys


def keys_for_domain(keys: list[SigningKey], domain: str) -> list[SigningKey]:
    """The newest key of each algorithm for `domain` (rotation adds newer ones)."""
    newest: dict[str, SigningKey] = {}
    for key in keys:
        if key.domain == domain.lower() and (
                key.algorithm not in newest or key.created >= newest[key.algorithm].created):
            newest[key.algorithm] = key
    return [newest[algorithm] for algorithm in ALGORITHMS if algorithm in newest]
