"""The local runtime's test mode: faults injected on purpose, for durability tests of a
running stack. Nothing here ships: the edge and the functions are given these wrappers by
the local runtime (`edge_child.py`, `worker.py`), and only when the environment of
`mailpipe up` asks for them:

- `MAILPIPE_FAULT_STORAGE_SWITCH=<file>`: the SMTP edge's storage fails while the file
  exists, so a test can flip it from outside at an exact moment.
- `MAILPIPE_FAULT_FILING=crash=0.2,poison=0.01,state=<dir>`: the filing function crashes
  on a share of messages (see FilingFaults).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from mailcore.errors import StorageUnavailable

if TYPE_CHECKING:  # the worker of every function imports this: no more than it needs
    from mailcore.domain.envelope import Envelope
    from mailcore.ports import MessageWriter

STORAGE_SWITCH = "MAILPIPE_FAULT_STORAGE_SWITCH"
FILING = "MAILPIPE_FAULT_FILING"
FILING_FUNCTION = "FileMessageFunction"  # the template's logical id
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
log = logging.getLogger("mailpipe.local.faults")


class FaultInjectingWriter:
    """Storage at the edge that fails while the switch is on."""

    def __init__(self, writer: MessageWriter, switch: Path) -> None:
        self._writer = writer
        self._switch = switch

    async def put(self, message_id: str, raw: bytes, envelope: Envelope) -> str:
        if self._switch.exists():
            raise StorageUnavailable(f"fault injected ({self._switch})")
        return await self._writer.put(message_id, raw, envelope)


def storage_switch(environ: Mapping[str, str]) -> Path | None:
    switch = environ.get(STORAGE_SWITCH)
    if switch:
        log.warning("storage fault injection armed: %s", switch)
    return Path(switch) if switch else None


@dataclass(frozen=True)
class FilingFaults:
    """Crashes of the filing function, chosen per message by a hash of its key, so a
    test can tell which messages were hit. `crash`: this share of messages crashes on
    its first filing, after the write (the worst moment: written, not acknowledged).
    `poison`: this share crashes every time, before the write. `state`: a folder that
    remembers which crashes already happened (the function runs in several processes).

    Injected where Lambda would see them, around the handler: a crash between filing and
    acknowledging has no adapter call of its own to fail in (a batch's first copies share
    one write)."""

    crash: float
    poison: float
    state: Path

    @classmethod
    def from_config(cls, text: str) -> FilingFaults:
        """`crash=0.2,poison=0.01,state=/tmp/faults`"""
        values = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
        return cls(float(values.get("crash", 0)), float(values.get("poison", 0)),
                   Path(values.get("state", "/tmp/mailpipe-faults")))  # noqa: S108

    def around(self, handler: Handler) -> Handler:
        """The handler of an SQS batch of S3 notifications, failing the records of chosen
        messages as a crash would: poison ones without filing them, the others' first
        time after the handler filed them."""

        def crashing(event: dict[str, Any], context: Any) -> dict[str, Any]:
            records = event["Records"]
            poisoned = [record["messageId"] for record in records
                        if any(chosen(key, self.poison, "poison") for key in _keys(record))]
            result = handler({**event, "Records": [
                record for record in records if record["messageId"] not in poisoned]}, context)
            failed = [item["itemIdentifier"] for item in result["batchItemFailures"]]
            crashed = [record["messageId"] for record in records
                       if record["messageId"] not in poisoned + failed
                       and any(self._crashes_now(key) for key in _keys(record))]
            return {**result, "batchItemFailures": [
                {"itemIdentifier": message_id} for message_id in failed + poisoned + crashed]}

        return crashing

    def _crashes_now(self, key: str) -> bool:
        if not chosen(key, self.crash, "crash"):
            return False
        self.state.mkdir(parents=True, exist_ok=True)
        marker = self.state / hashlib.sha256(key.encode()).hexdigest()
        if marker.exists():
            return False
        marker.touch()
        return True


def around_handler(logical_id: str, handler: Handler, environ: Mapping[str, str]) -> Handler:
    """The function's handler as the test mode asks: unchanged unless faults are asked
    for this function."""
    config = environ.get(FILING)
    if logical_id != FILING_FUNCTION or not config:
        return handler
    log.warning("filing fault injection armed: %s", config)
    return FilingFaults.from_config(config).around(handler)


def _keys(record: dict[str, Any]) -> list[str]:
    """The S3 keys the record's notification names (none for what is not one)."""
    try:
        notification = json.loads(record["body"])
        return [unquote_plus(s3_record["s3"]["object"]["key"])
                for s3_record in notification.get("Records", ())]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []


def chosen(key: str, share: float, purpose: str) -> bool:
    digest = hashlib.sha256(f"{purpose}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share
