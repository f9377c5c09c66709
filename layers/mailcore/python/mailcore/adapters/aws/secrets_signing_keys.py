"""The SigningKeys port on Secrets Manager: the keys document (signing_keys.document_of) in
one secret, read once per process and again after a few minutes, so that keys added at a
deploy (a new domain) are used without a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.authentication.signing_keys import (
    KeysDocumentError,
    SigningKey,
    document_of,
    keys_for_domain,
    keys_of,
)
from mailcore.errors import TransientFailure

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

KEYS_SECONDS = 300
RETRY_SECONDS = 30


def read_keys(client: SecretsManagerClient, secret_id: str) -> list[SigningKey]:
    """The keys in the secret (the template creates it holding "{}": no keys)."""
    return keys_of(client.get_secret_value(SecretId=secret_id).get("SecretString", ""))


def write_keys(client: SecretsManagerClient, secret_id: str, keys: list[SigningKey]) -> None:
    client.put_secret_value(SecretId=secret_id, SecretString=document_of(keys))


class SecretsSigningKeys:
    def __init__(self, client: SecretsManagerClient, secret_id: str,
                 seconds: float = KEYS_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._secret_id = secret_id
        self._seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()  # the edge's threads ask at once: one read for all
        self._keys: list[SigningKey] = []
        self._read_at: float | None = None

    def for_domain(self, domain: str) -> list[SigningKey]:
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._seconds:
                self._read(now)
            found = keys_for_domain(self._keys, domain)
            if not found and self._read_at is not None and (
                    now - self._read_at >= RETRY_SECONDS):
                # A domain without keys may be one whose keys the deploy is writing now
                # (the keys custom resource runs beside this process's first start).
                self._read(now)
                found = keys_for_domain(self._keys, domain)
            return found

    def _read(self, now: float) -> None:
        try:
            self._keys = read_keys(self._client, self._secret_id)
        except (BotoCoreError, ClientError, KeysDocumentError) as exc:
            if self._read_at is None:
                raise TransientFailure("DKIM keys unavailable") from exc
            # Keys read before are still good: sign with them, read again soon.
            self._read_at = now - self._seconds + RETRY_SECONDS
        else:
            self._read_at = now
