"""The edge's S3 writer over real HTTP: against moto's server, and against a scripted
endpoint that misbehaves as S3 may (closes idle connections, throttles, refuses)."""

from __future__ import annotations

import asyncio
import http.client
import smtplib
import threading
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import botocore.session
import pytest
from botocore.config import Config
from botocore.credentials import Credentials

from mailcore.adapters.aws.s3_store import S3RawMessageStore
from mailcore.adapters.aws.s3_writer import MAX_CONNECTIONS, S3MessageWriter
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.errors import StorageUnavailable
from mailcore.s3_keys import MESSAGES_PREFIX, message_key
from mailpipe.local.launcher import free_ports
from mailpipe.local.metering import Meter, MeteredMotoServer
from tests.edge_support import running_edge

RAW = b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: hi\r\n\r\nbody\r\n"
CREDENTIALS = Credentials("testing", "testing")


def _envelope(recipients: int = 1) -> Envelope:
    return Envelope("alice@crepes.fr",
                    tuple(f"user{number}@hamburger.edu" for number in range(recipients)),
                    "192.0.2.1", "mail.crepes.fr", True)


def _client(port: int) -> object:
    return botocore.session.get_session().create_client(
        "s3", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(s3={"addressing_style": "path"}))


PAUSES: list[float] = []


async def _no_pause(seconds: float) -> None:
    PAUSES.append(seconds)  # the back-off the writer asked for, not waited


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[tuple[object, str]]:
    (port,) = free_ports(1)
    server = MeteredMotoServer(Meter(), "127.0.0.1", port)  # as the local runtime serves it
    server.start()
    try:
        client = _client(port)
        client.create_bucket(Bucket="mail")  # type: ignore[attr-defined]
        yield client, "mail"
    finally:
        server.stop()


@pytest.mark.parametrize(("recipients", "size"), [
    (1, len(RAW)),
    (200, len(RAW)),  # more than S3's metadata holds: the envelope is an object of its own
    (1, 3 * 1024 * 1024),  # signed in a thread
])
def test_what_the_writer_puts_the_store_reads_back_exactly(
        moto_s3: tuple[object, str], recipients: int, size: int) -> None:
    client, bucket = moto_s3
    raw = RAW + b"x" * (size - len(RAW))
    envelope = _envelope(recipients)
    message_id = new_message_id()

    async def put() -> str:
        writer = S3MessageWriter(client, bucket, CREDENTIALS)  # type: ignore[arg-type]
        try:
            return await writer.put(message_id, raw, envelope)
        finally:
            await writer.close()

    key = asyncio.run(put())
    store = S3RawMessageStore(client, bucket)  # type: ignore[arg-type]
    assert store.get_message(key) == (envelope, raw)


def test_the_local_s3_keeps_every_connection_the_writer_may_open_alive(
        moto_s3: tuple[object, str]) -> None:
    client, bucket = moto_s3
    port = int(client.meta.endpoint_url.rsplit(":", 1)[1])  # type: ignore[attr-defined]
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                   for _ in range(MAX_CONNECTIONS)]
    try:
        closing = []
        for connection in connections:  # each idle, kept by the server, as the next opens
            connection.request("HEAD", f"/{bucket}")
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200
            closing.append(answer.getheader("Connection") == "close")
        assert not any(closing), f"{closing.count(True)} closed after their answer"
    finally:
        for connection in connections:
            connection.close()


def test_a_missing_bucket_is_storage_unavailable_after_one_request(
        moto_s3: tuple[object, str]) -> None:
    client, _ = moto_s3

    async def put() -> None:
        await S3MessageWriter(client, "no-such-bucket",  # type: ignore[arg-type]
                              CREDENTIALS, sleep=_no_pause).put(new_message_id(), RAW,
                                                                _envelope())

    with pytest.raises(StorageUnavailable, match="HTTP 404 NoSuchBucket"):
        asyncio.run(put())


def test_the_edge_answers_250_once_the_writer_stored_the_message(
        moto_s3: tuple[object, str]) -> None:
    client, bucket = moto_s3
    writer = S3MessageWriter(client, bucket, CREDENTIALS)  # type: ignore[arg-type]
    with running_edge(writer=writer) as edge, \
            smtplib.SMTP("127.0.0.1", edge.mx_port) as smtp:
        smtp.ehlo("crepes.fr")
        smtp.mail("alice@crepes.fr")
        smtp.rcpt("bob@hamburger.edu")
        code, reply = smtp.data(RAW)
    assert code == 250
    key = message_key(reply.decode().rsplit(" ", 1)[-1])
    envelope, raw = S3RawMessageStore(client, bucket).get_message(key)  # type: ignore[arg-type]
    assert raw.endswith(RAW) and raw.startswith(b"Received: from crepes.fr")
    assert envelope.rcpt_tos == ("bob@hamburger.edu",)


def test_the_edge_answers_451_when_s3_refuses(moto_s3: tuple[object, str]) -> None:
    client, _ = moto_s3
    writer = S3MessageWriter(client, "no-such-bucket", CREDENTIALS)  # type: ignore[arg-type]
    with running_edge(writer=writer) as edge, \
            smtplib.SMTP("127.0.0.1", edge.mx_port) as smtp:
        smtp.ehlo("crepes.fr")
        smtp.mail("alice@crepes.fr")
        smtp.rcpt("bob@hamburger.edu")
        assert smtp.data(RAW)[0] == 451


# -- a scripted endpoint -------------------------------------------------------------------
@dataclass
class Script:
    """What the endpoint answers, request by request; what it saw."""

    answers: list[bytes]
    close_after_each: bool = False
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0


def _answer(status: bytes, body: bytes = b"") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)


OK = _answer(b"200 OK")
SLOW_DOWN = _answer(b"503 Slow Down", b"<Error><Code>SlowDown</Code><Message/></Error>")
HANG_UP = b""  # the connection closes instead of an answer
DENIED_CHUNKED = (b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"10\r\n<Error><Code>Acc\r\n18\r\nessDenied</Code></Error>\r\n0\r\n\r\n")


async def _endpoint(script: Script, test: Callable[[int], Awaitable[None]]) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        script.connections += 1
        try:
            while script.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                script.requests.append(head + await reader.readexactly(length))
                answer = script.answers.pop(0)
                writer.write(answer)
                await writer.drain()
                if script.close_after_each or answer == HANG_UP:
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        await test(server.sockets[0].getsockname()[1])


def _run(script: Script, puts: int, credentials: object = CREDENTIALS
         ) -> list[BaseException | None]:
    """Each put's failure (None: stored), in order, through one writer."""
    outcomes: list[BaseException | None] = []
    PAUSES.clear()

    async def test(port: int) -> None:
        writer = S3MessageWriter(_client(port), "mail", credentials,  # type: ignore[arg-type]
                                 sleep=_no_pause)
        for _ in range(puts):
            try:
                await writer.put(new_message_id(), RAW, _envelope())
                outcomes.append(None)
            except StorageUnavailable as exc:
                outcomes.append(exc)
            await asyncio.sleep(0.05)  # the endpoint's close arrives meanwhile
        await writer.close()

    asyncio.run(_endpoint(script, test))
    return outcomes


def test_puts_share_one_kept_alive_connection() -> None:
    script = Script([OK, OK, OK])
    assert _run(script, 3) == [None, None, None]
    assert script.connections == 1
    assert all(request.startswith(f"PUT /mail/{MESSAGES_PREFIX}".encode())
               for request in script.requests)
    assert all(b"\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/" in request
               and b"\r\nx-amz-checksum-crc32: " in request for request in script.requests)


def test_a_connection_the_endpoint_closed_while_idle_is_replaced() -> None:
    script = Script([OK, OK, OK], close_after_each=True)
    assert _run(script, 3) == [None, None, None]
    assert (script.connections, len(script.requests)) == (3, 3)


def test_a_kept_connection_that_hangs_up_on_a_put_costs_no_attempt() -> None:
    # GIVEN a kept-alive connection that the endpoint closes as the next PUT arrives
    script = Script([OK, HANG_UP, OK])
    # THEN that PUT is sent again at once on a new connection, and stored
    assert _run(script, 2) == [None, None]
    assert (script.connections, len(script.requests)) == (2, 3)
    assert PAUSES == []


def test_throttling_is_retried_until_stored() -> None:
    script = Script([SLOW_DOWN, SLOW_DOWN, OK])
    assert _run(script, 1) == [None]
    assert len(script.requests) == 3
    assert len(PAUSES) == 2 and PAUSES[1] <= 0.4  # jittered, growing back-off


def test_three_failures_in_a_row_are_storage_unavailable() -> None:
    script = Script([SLOW_DOWN] * 3)
    (failure,) = _run(script, 1)
    assert isinstance(failure, StorageUnavailable)
    assert "HTTP 503 SlowDown" in str(failure)
    assert len(script.requests) == 3


def test_a_refusal_is_not_retried() -> None:
    script = Script([DENIED_CHUNKED, OK])
    (failure,) = _run(script, 1)
    assert isinstance(failure, StorageUnavailable)
    assert "HTTP 403 AccessDenied" in str(failure)
    assert len(script.requests) == 1


def test_an_answer_that_is_not_http_is_retried_on_a_new_connection() -> None:
    script = Script([b"SSH-2.0-OpenSSH_9.2\r\n\r\n", OK])
    assert _run(script, 1) == [None]
    assert (script.connections, len(script.requests)) == (2, 2)


def test_an_interim_answer_is_skipped_and_a_bodiless_one_is_not_waited_on() -> None:
    # 100 Continue although the writer never asks for it; 204 with no Content-Length,
    # whose body would otherwise be read until the connection closed (or a timeout).
    script = Script([b"HTTP/1.1 100 Continue\r\n\r\n" + OK, b"HTTP/1.1 204 No Content\r\n\r\n",
                     OK])
    assert _run(script, 3) == [None, None, None]
    assert script.connections == 1


class ExpiringCredentials:
    """RefreshableCredentials' shape: due for a refresh, which blocks while it fetches."""

    def __init__(self) -> None:
        self.refreshed_on: list[str] = []

    def refresh_needed(self) -> bool:
        return True

    def get_frozen_credentials(self) -> Credentials:
        self.refreshed_on.append(threading.current_thread().name)
        return CREDENTIALS


def test_credentials_due_for_a_refresh_are_fetched_off_the_event_loop() -> None:
    credentials = ExpiringCredentials()
    assert _run(Script([OK]), 1, credentials) == [None]
    assert credentials.refreshed_on and threading.main_thread().name not in credentials.refreshed_on


def test_a_large_message_to_a_slow_endpoint_is_not_copied_into_the_send_buffer() -> None:
    # GIVEN an endpoint that reads 64 KiB a millisecond (S3 across a network is slower
    # than this process); WHEN an 8 MiB message is put; THEN what the writer allocates
    # meanwhile stays a small fraction of the message (the transport copies whatever the
    # socket does not take at once: 8.1 MiB traced for this message written whole).
    body = b"x" * (8 * 2**20)

    async def slow_reader(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while length:
            length -= len(await reader.read(min(65536, length)))
            await asyncio.sleep(0.001)
        writer.write(OK)
        await writer.drain()
        writer.close()

    async def put() -> int:
        server = await asyncio.start_server(slow_reader, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            writer = S3MessageWriter(_client(port), "mail", CREDENTIALS)  # type: ignore[arg-type]
            tracemalloc.start()
            try:
                await writer.put(new_message_id(), body, _envelope())
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
                await writer.close()

    assert asyncio.run(put()) < 2 * 2**20
