"""The local stack's DKIM keys: kept under the state folder, so that a second `mailpipe up`
signs with the keys whose records were published after the first, and put into the
stack's keys secret in moto (what the Custom::DkimKeys resource does at a deploy)."""

from __future__ import annotations

import fcntl
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailcore.authentication.signing_keys import (
    KeysDocumentError,
    SigningKey,
    document_of,
    keys_of,
    with_keys_for,
)

KEYS_FILE = "dkim-keys.json"


def keys_file(state_dir: Path) -> Path:
    return state_dir / KEYS_FILE


def keep_local_keys(state_dir: Path, domains: list[str], secrets: Any,
                    secret_id: str) -> list[SigningKey]:
    """The keys in the state folder, with new ones for each domain that has none (written
    back, readable by this user alone: private keys), put into the secret `secret_id`."""
    path = keys_file(state_dir)
    # Stacks that share a state folder may start at once: one reads and writes at a time,
    # so neither makes keys the other just made for a domain they share.
    with (state_dir / ".dkim-keys.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            keys = keys_of(path.read_text()) if path.exists() else []
        except KeysDocumentError as exc:
            raise RuntimeError(f"the DKIM keys in {path} cannot be read ({exc}); move the "
                               "file away to make new keys (and publish their records)"
                               ) from exc
        kept = with_keys_for(keys, domains, datetime.now(UTC).date())
        if kept != keys or not path.exists():
            # mkstemp's file is this user's alone (0600) before a key is in it.
            descriptor, partial = tempfile.mkstemp(dir=state_dir, prefix=".dkim-keys.")
            with os.fdopen(descriptor, "w") as file:
                file.write(document_of(kept))
            Path(partial).replace(path)
        path.chmod(0o600)  # private keys, whoever made the file
    secrets.put_secret_value(SecretId=secret_id, SecretString=document_of(kept))
    return kept
