"""What the S3 client sends on the wire: a small message's PUT in one go, and connections
kept for the edge's storage threads instead of a handshake per message."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from mailcore.adapters.aws import clients
from mailcore.adapters.aws.s3_store import S3RawMessageStore
from mailcore.domain.envelope import Envelope


class _Recorder(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _AnswerEveryRequest)
        self.connections = 0
        self.heads: list[bytes] = []
        self.lock = threading.Lock()


class _AnswerEveryRequest(socketserver.StreamRequestHandler):
    """HTTP/1.1 with keep-alive, as S3 speaks it: 100 Continue when asked, then 200."""

    server: _Recorder

    def handle(self) -> None:
        with self.server.lock:
            self.server.connections += 1
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = self.rfile.readline()
                if not line:
                    return
                head += line
            with self.server.lock:
                self.server.heads.append(head)
            fields = {name.strip().lower(): value.strip() for name, _, value in
                      (line.partition(b":") for line in head.split(b"\r\n")[1:]) if name}
            if fields.get(b"expect", b"").lower() == b"100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.rfile.read(int(fields.get(b"content-length", b"0")))
            self.wfile.write(b'HTTP/1.1 200 OK\r\nETag: "x"\r\nContent-Length: 0\r\n\r\n')


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[S3RawMessageStore, _Recorder]]:
    recorder = _Recorder()
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    host, port = recorder.server_address[:2]
    for name, value in {"AWS_ENDPOINT_URL": f"http://{host}:{port}",
                        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    clients.s3_client.cache_clear()
    try:
        yield S3RawMessageStore(clients.s3_client(), "messages"), recorder
    finally:
        clients.s3_client.cache_clear()
        recorder.shutdown()
        recorder.server_close()


def _envelope() -> Envelope:
    return Envelope(mail_from="alice@crepes.fr", rcpt_tos=("bob@hamburger.edu",),
                    peer="192.0.2.1", helo="crepes.fr", tls=False)


def test_a_small_message_is_put_without_waiting_for_100_continue(s3) -> None:
    store, recorder = s3
    store.put("01SMALL", b"x" * 10240, _envelope())
    store.put("01LARGE", b"x" * (clients.SMALL_BODY + 1), _envelope())
    small, large = recorder.heads
    assert b"expect:" not in small.lower()
    assert b"expect: 100-continue" in large.lower()


def test_the_edge_s_storage_threads_keep_their_connections(s3) -> None:
    """32 threads storing at once, five rounds: 32 connections at most, not one per
    message beyond botocore's default pool of 10."""
    store, recorder = s3
    rounds, threads = 5, clients.MAX_POOL_CONNECTIONS
    start = threading.Barrier(threads)

    def put(number: int) -> None:
        start.wait(timeout=10)  # every thread in the pool at once, in every round
        store.put(f"01M{number}", b"x" * 1024, _envelope())

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for round_number in range(rounds):
            list(pool.map(put, range(round_number * threads, (round_number + 1) * threads)))
    assert len(recorder.heads) == rounds * threads
    assert threads / 2 < recorder.connections <= threads


def test_the_recorder_counts_a_connection_per_client() -> None:
    """The counting above is the server's own: two raw connections count two."""
    recorder = _Recorder()
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    try:
        for _ in range(2):
            with socket.create_connection(recorder.server_address[:2]) as raw:
                raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert raw.recv(100).startswith(b"HTTP/1.1 200")
        assert recorder.connections == 2
    finally:
        recorder.shutdown()
        recorder.server_close()
