"""Raw messages and envelopes in S3."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from mailcore import s3_keys
from mailcore.adapters.content_disposition import attachment_disposition
from mailcore.domain.envelope import Envelope
from mailcore.errors import MessageNotFound, PermanentFailure, StorageUnavailable, TooLarge
from mailcore.ports import UploadForm

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING = {"NoSuchKey", "404", "NotFound"}
ENVELOPE_METADATA = "envelope"  # x-amz-meta-envelope
MAX_ENVELOPE_METADATA = 1800  # S3 allows 2 KB of user metadata, names included
LINK_SECONDS = 300


def envelope_placement(envelope: Envelope) -> tuple[dict[str, str], bytes | None]:
    """(the message object's user metadata, the envelope object's body or None).

    The usual envelope rides on the message object itself: one PUT (half of what a
    message costs in S3 requests), and one object that is there whole or not at all.
    An envelope with too many recipients for S3's 2 KB of metadata is an object of its own.
    """
    document = envelope.to_json()
    if len(document) <= MAX_ENVELOPE_METADATA and document.isascii():
        return {ENVELOPE_METADATA: document.decode()}, None
    return {}, document


class S3RawMessageStore:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    # The key layout is mailcore.s3_keys's, the same for every store.
    def draft_key(self, draft_id: str) -> str:
        return s3_keys.draft_key(draft_id)

    def part_key(self, accepted_id: str, index: int) -> str:
        return s3_keys.part_key(accepted_id, index)

    def upload_key(self, account: str, upload_id: str) -> str:
        return s3_keys.upload_key(account, upload_id)

    def appended_key(self, message_id: str) -> str:
        return s3_keys.appended_key(message_id)

    def put(self, message_id: str, raw: bytes, envelope: Envelope) -> str:
        key = s3_keys.message_key(message_id)
        metadata, separate_envelope = envelope_placement(envelope)
        try:
            if separate_envelope is not None:
                # Envelope first: the message object is what triggers filing, so when it
                # exists its envelope does too.
                self._client.put_object(Bucket=self._bucket, Key=s3_keys.envelope_key(message_id),
                                        Body=separate_envelope, ContentType="application/json")
            self._client.put_object(Bucket=self._bucket, Key=key, Body=raw,
                                    ContentType="message/rfc822", Metadata=metadata)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(f"storing {key} failed") from exc
        return key

    def get_raw(self, key: str) -> bytes:
        return self._get(key)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        # HTTP ranges name their last byte (RFC 9110 14.1.2); one past the object's end
        # is cut to it, as a slice is.
        with _reading(key):
            return self._client.get_object(Bucket=self._bucket, Key=key,
                                           Range=f"bytes={start}-{end - 1}")["Body"].read()

    def get_envelope(self, key: str) -> Envelope:
        message_id = _message_id(key)
        with _reading(key):
            metadata = self._client.head_object(Bucket=self._bucket, Key=key)["Metadata"]
        return self._envelope(message_id, metadata)

    def get_message(self, key: str) -> tuple[Envelope, bytes]:
        message_id = _message_id(key)
        with _reading(key):
            response = self._client.get_object(Bucket=self._bucket, Key=key)
            raw = response["Body"].read()
        return self._envelope(message_id, response.get("Metadata", {})), raw

    def _envelope(self, message_id: str, metadata: dict[str, str]) -> Envelope:
        # Metadata travels as HTTP header fields, whose names carry no case: S3 sends them
        # in lower case, but a server in front of moto may capitalise them (waitress did).
        document = next((value for name, value in metadata.items()
                         if name.lower() == ENVELOPE_METADATA), None)
        if document is not None:
            return Envelope.from_json(document.encode())
        return Envelope.from_json(self._get(s3_keys.envelope_key(message_id)))

    def put_object(self, key: str, data: bytes | bytearray, content_type: str,
                   filename: str | None = None) -> None:
        request: dict[str, Any] = {"Bucket": self._bucket, "Key": key, "Body": data,
                                   "ContentType": content_type}
        if filename:
            request["ContentDisposition"] = attachment_disposition(filename)
        try:
            self._client.put_object(**request)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(f"storing {key} failed") from exc

    def get_object(self, key: str, max_size: int) -> bytes:
        with _reading(key):
            size = self._client.head_object(Bucket=self._bucket, Key=key)["ContentLength"]
        if size > max_size:
            raise TooLarge(f"larger than {max_size} bytes")
        return self._get(key)

    def delete_message(self, key: str) -> None:
        message_id = s3_keys.message_id_of_key(key)
        keys = [key, s3_keys.imap_view_object_key(key)] + (
            [s3_keys.envelope_key(message_id)] if message_id else [])
        try:
            self._client.delete_objects(Bucket=self._bucket, Delete={
                "Objects": [{"Key": each} for each in keys], "Quiet": True})
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(f"deleting {key} failed") from exc

    def exists(self, key: str) -> bool:
        try:
            with _reading(key):
                self._client.head_object(Bucket=self._bucket, Key=key)
        except MessageNotFound:
            return False
        return True

    def download_link(self, key: str) -> str:
        return self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=LINK_SECONDS)

    def upload_form(self, key: str, content_type: str, max_size: int) -> UploadForm:
        # A presigned POST, unlike a presigned PUT, carries a policy that S3 enforces:
        # this key, this type, at most max_size bytes.
        post = self._client.generate_presigned_post(
            Bucket=self._bucket, Key=key, Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_size]],
            ExpiresIn=LINK_SECONDS)
        return UploadForm(post["url"], {name: str(value)
                                        for name, value in post["fields"].items()})

    def _get(self, key: str) -> bytes:
        with _reading(key):
            return self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()


@contextmanager
def _reading(key: str) -> Iterator[None]:
    """S3's answers to a read, as domain errors: missing, or try again later."""
    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING:
            raise MessageNotFound(key) from exc
        raise StorageUnavailable(f"reading {key} failed") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"reading {key} failed") from exc


def _message_id(key: str) -> str:
    message_id = s3_keys.message_id_of_key(key)
    if message_id is None:
        raise PermanentFailure(f"not a message key: {key!r}")
    return message_id
