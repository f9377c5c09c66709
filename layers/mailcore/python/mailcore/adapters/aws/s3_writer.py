"""Accepted messages into S3 from the edge's event loop: one signed PUT per message, sent
on a kept-alive connection by asyncio itself.

Why not botocore in a storage thread, as the edge did: a 10 KiB PutObject cost 1.3 ms of
CPU there (endpoint rules, event hooks, urllib3, parsing), twice what aiosmtpd spends on
the whole SMTP transaction, and 32 threads handing the GIL to and fro slowed the loop
further; this path costs 0.3 ms (bench/edge_throughput.py, case (d), and PERFORMANCE.md).
botocore still does what is hard to get right: where the bucket is (resolved once, from a
presigned URL), the credentials (refreshed before they expire) and the SigV4 signature.
What is left here is HTTP/1.1: a request with Content-Length, a response with a status.
"""

from __future__ import annotations

import asyncio
import base64
import random
import ssl
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.httpsession import get_cert_path

from mailcore.adapters.aws.s3_store import envelope_placement
from mailcore.domain.envelope import Envelope
from mailcore.errors import StorageUnavailable
from mailcore.s3_keys import envelope_key, message_key

if TYPE_CHECKING:
    from botocore.credentials import Credentials
    from mypy_boto3_s3 import S3Client

# Run in a thread: what takes the loop longer than a few milliseconds (checksum, signing
# and, on plain HTTP, hashing a body of this size or more; the hashes release the GIL).
OFF_LOOP_FROM = 1024 * 1024
ATTEMPTS = 3  # botocore's standard retry mode: 3 attempts, jittered exponential back-off
BACK_OFF_SECONDS = 0.1
CONNECT_SECONDS = 5.0
# For the answer after the last byte is sent, and for every MiB sent before it.
ANSWER_SECONDS = 20.0
SECONDS_PER_MIB = 2.0
SEND_SLICE = 256 * 1024
MAX_CONNECTIONS = 64  # at once; as many stay open for the next PUTs
MAX_HEAD = 16 * 1024
MAX_ERROR_BODY = 64 * 1024  # S3's error documents are a few hundred bytes
_PROBE = "probe"


class _Unusable(Exception):
    """The answer could not be read: the connection is dropped, the PUT tried again."""


_BROKEN = (OSError, TimeoutError, EOFError, asyncio.LimitOverrunError, _Unusable)


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    keep_alive: bool


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        self.writer.close()


class S3MessageWriter:
    """A MessageWriter (mailcore.ports) for S3: the same objects S3RawMessageStore.put
    writes, so filing reads them as it always did."""

    def __init__(self, client: S3Client, bucket: str, credentials: Credentials,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        # botocore's endpoint resolution (region, path or virtual host, FIPS, custom
        # endpoint) for this bucket; only the key differs from one message to the next.
        probe = urlsplit(client.generate_presigned_url(
            "put_object", Params={"Bucket": bucket, "Key": _PROBE}, ExpiresIn=60))
        self._tls = probe.scheme == "https"
        self._netloc = probe.netloc
        self._host = probe.hostname or ""
        self._port = probe.port or (443 if self._tls else 80)
        self._path_prefix = probe.path[: -len(_PROBE)]
        self._region = client.meta.region_name
        self._credentials = credentials
        self._sleep = sleep
        self._ssl: ssl.SSLContext | None = None
        if self._tls:
            self._ssl = ssl.create_default_context(cafile=get_cert_path(True))
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def put(self, message_id: str, raw: bytes, envelope: Envelope) -> str:
        key = message_key(message_id)
        metadata, separate_envelope = envelope_placement(envelope)
        if separate_envelope is not None:
            # Envelope first: the message object is what triggers filing.
            await self._put(envelope_key(message_id), separate_envelope,
                            {"Content-Type": "application/json"})
        headers = {"Content-Type": "message/rfc822"}
        headers.update({f"x-amz-meta-{name}": value for name, value in metadata.items()})
        await self._put(key, raw, headers)
        return key

    async def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def _put(self, key: str, body: bytes, headers: dict[str, str]) -> None:
        failure = "no attempt"
        for attempt in range(ATTEMPTS):
            if attempt:
                await self._sleep(random.uniform(0, BACK_OFF_SECONDS * 2 ** attempt))  # noqa: S311
            # Signed again each time: the signature carries the time, credentials rotate.
            signed = await self._signed(key, body, headers)
            try:
                answer = await self._exchange(signed, body)
            except (OSError, TimeoutError, _Unusable) as exc:
                failure = f"{type(exc).__name__}: {exc}"
                continue
            if 200 <= answer.status < 300:
                return
            failure = f"HTTP {answer.status} {_error_code(answer.body)}"
            if not _worth_retrying(answer.status):
                break
        raise StorageUnavailable(f"storing {key} failed: {failure}")

    async def _signed(self, key: str, body: bytes, headers: dict[str, str]) -> bytes:
        loop = asyncio.get_running_loop()
        refresh_needed = getattr(self._credentials, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            # RefreshableCredentials fetch new ones (from the ECS credentials endpoint) a
            # few minutes before expiry: an HTTP call, made in a thread.
            credentials = await loop.run_in_executor(
                None, self._credentials.get_frozen_credentials)
        else:
            credentials = self._credentials.get_frozen_credentials()
        if len(body) >= OFF_LOOP_FROM:
            return await loop.run_in_executor(None, self._sign, credentials, key, body, headers)
        return self._sign(credentials, key, body, headers)

    def _sign(self, credentials: Any, key: str, body: bytes, headers: dict[str, str]) -> bytes:
        """The request line and headers, signed; the body is sent after them as it is."""
        path = self._path_prefix + quote(key, safe="/~")
        checksum = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
        request = AWSRequest("PUT", f"{'https' if self._tls else 'http'}://{self._netloc}{path}",
                             headers={**headers, "x-amz-checksum-crc32": checksum}, data=body)
        # Over TLS the body is not hashed into the signature (botocore does the same):
        # TLS and the CRC32 that S3 checks before it stores anything protect it.
        request.context["payload_signing_enabled"] = not self._tls
        S3SigV4Auth(credentials, "s3", self._region).add_auth(request)
        lines = [f"PUT {path} HTTP/1.1", f"Host: {self._netloc}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in request.headers.items()
                  if name.lower() != "host"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def _exchange(self, head: bytes, body: bytes) -> _Answer:
        async with self._slots:
            connection, reused = await self._connection()
            try:
                return await self._send_or_close(connection, head, body)
            except _Unusable:
                if not reused:
                    raise
            # S3 closes a connection it has kept idle: finding that out is no attempt.
            connection, _ = await self._connection(fresh=True)
            return await self._send_or_close(connection, head, body)

    async def _send_or_close(self, connection: _Connection, head: bytes,
                             body: bytes) -> _Answer:
        try:
            answer = await self._send(connection, head, body)
        except _BROKEN as exc:
            connection.close()
            raise _Unusable(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            connection.close()  # cancelled halfway: what the server reads next is unknown
            raise
        if answer.keep_alive and len(self._idle) < MAX_CONNECTIONS:
            self._idle.append(connection)
        else:
            connection.close()
        return answer

    async def _connection(self, fresh: bool = False) -> tuple[_Connection, bool]:
        while self._idle and not fresh:
            connection = self._idle.pop()
            if not connection.reader.at_eof() and not connection.writer.is_closing():
                return connection, True
            connection.close()
        async with asyncio.timeout(CONNECT_SECONDS):
            reader, writer = await asyncio.open_connection(
                self._host, self._port, ssl=self._ssl, limit=MAX_HEAD)
        return _Connection(reader, writer), False

    async def _send(self, connection: _Connection, head: bytes, body: bytes) -> _Answer:
        async with asyncio.timeout(ANSWER_SECONDS + SECONDS_PER_MIB * len(body) / 2**20):
            connection.writer.write(head)
            # In slices, each let go before the next: what the socket does not take at once
            # the transport copies, and a 25 MiB message copied whole is 25 MiB more.
            view = memoryview(body)
            for start in range(0, len(body), SEND_SLICE):
                connection.writer.write(view[start : start + SEND_SLICE])
                await connection.writer.drain()
            return await _read_answer(connection.reader)


async def _read_answer(reader: asyncio.StreamReader) -> _Answer:
    version, status, head = await _read_head(reader)
    while 100 <= status < 200:  # interim (100 Continue, unasked for): the answer follows
        version, status, head = await _read_head(reader)
    header_lines = head.split("\r\n")[1:]
    headers: dict[str, str] = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    keep_alive = (version == "HTTP/1.1"
                  and "close" not in headers.get("connection", "").lower())
    if status in (204, 304):
        return _Answer(status, b"", keep_alive)  # no body, whatever the fields say
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _Answer(status, await _read_chunked(reader), keep_alive)
    if "content-length" in headers:
        length = headers["content-length"]
        if not length.isdigit() or int(length) > MAX_ERROR_BODY:
            raise _Unusable(f"response body of {length[:20]!r} bytes")
        return _Answer(status, await reader.readexactly(int(length)), keep_alive)
    # Neither: the body ends when the connection does (RFC 9112, section 6.3).
    body = await reader.read(MAX_ERROR_BODY)
    return _Answer(status, body, keep_alive=False)


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, int, str]:
    """(HTTP version, status, the head as text) of the next response."""
    try:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    except asyncio.LimitOverrunError as exc:
        raise _Unusable("response head too long") from exc
    status_line = head.split("\r\n", 1)[0]
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise _Unusable(f"not an HTTP/1 response: {status_line[:80]!r}")
    return version, int(rest[:3]), head


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise _Unusable("bad chunk size") from exc
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailer fields, unused
            return body
        if len(body) + size > MAX_ERROR_BODY:
            raise _Unusable("response body too long")
        body += (await reader.readexactly(size + 2))[:-2]


def _worth_retrying(status: int) -> bool:
    # What botocore's standard mode retries: throttling, timeouts and server faults.
    return status in (408, 429) or status >= 500


def _error_code(body: bytes) -> str:
    """S3's <Code> from an error document, for the log; never its whole text."""
    start = body.find(b"<Code>")
    end = body.find(b"</Code>", start)
    if start < 0 or end < 0:
        return ""
    return body[start + 6 : min(end, start + 70)].decode("ascii", "replace")
