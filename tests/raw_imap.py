"""A bare IMAP client for tests that must send what client libraries will not (several
literals in one command, malformed commands) and see every byte of the answer."""

from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass, field

_LITERAL_AT_END = re.compile(rb"\{(\d+)\}\r\n$")
_SYNCHRONIZING = re.compile(rb"\{\d+\}\r\n")


class Dropped(ConnectionError):
    """The server closed the connection before it answered."""


@dataclass
class Answer:
    untagged: list[bytes]
    tagged: bytes  # the tagged status line, without its tag; b"" if a "+" ended a literal

    @property
    def status(self) -> bytes:
        return self.tagged.split(b" ", 1)[0]

    def searched(self) -> list[int]:
        """The numbers of the SEARCH answer, in order."""
        found = [line for line in self.untagged if line.startswith(b"* SEARCH")]
        assert len(found) == 1, self
        return [int(number) for number in found[0].split()[2:]]


@dataclass
class RawImap:
    sock: socket.socket
    greeting: bytes = b""
    _tags: int = 0
    _buffer: bytes = field(default=b"", repr=False)

    @classmethod
    def connect(cls, port: int, tls: ssl.SSLContext | None = None,
                timeout: float = 60) -> RawImap:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname="hamburger.edu")
        client = cls(sock)
        client.greeting = client._line()
        return client

    def login(self, user: str, password: str) -> None:
        answer = self.command(b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))
        assert answer.status == b"OK", answer

    def command(self, text: bytes) -> Answer:
        """Send one command (a tag is put before it, CRLF after it). Synchronizing literals
        ({n}CRLF inside `text`) wait for the server's "+"; a tagged answer instead ends
        the command there, as the server refused the literal."""
        self._tags += 1
        tag = b"t%d" % self._tags
        pieces = _SYNCHRONIZING.split(text)
        markers = _SYNCHRONIZING.findall(text)
        untagged: list[bytes] = []
        self.sock.sendall(tag + b" " + pieces[0] + (markers[0] if markers else b"\r\n"))
        for marker_index, piece in enumerate(pieces[1:], start=1):
            line = self._line()
            while line.startswith(b"* "):
                untagged.append(line)
                line = self._line()
            if line.startswith(tag + b" "):
                return Answer(untagged, line[len(tag) + 1:].rstrip(b"\r\n"))
            assert line.startswith(b"+"), line
            end = markers[marker_index] if marker_index < len(markers) else b"\r\n"
            self.sock.sendall(piece + end)
        while True:
            line = self._line()
            if line.startswith(tag + b" "):
                return Answer(untagged, line[len(tag) + 1:].rstrip(b"\r\n"))
            if line.startswith(b"+"):
                self.sock.sendall(b"*\r\n")  # a SASL challenge: cancelled (RFC 3501 6.2.2)
                continue
            untagged.append(line)

    def close(self) -> None:
        self.sock.close()

    def _line(self) -> bytes:
        """One response line, with the literals it holds."""
        line = self._read_line()
        while (literal := _LITERAL_AT_END.search(line)) is not None:
            line += self._read_exactly(int(literal.group(1)))
            line += self._read_line()
        return line

    def _read_line(self) -> bytes:
        while b"\n" not in self._buffer:
            self._fill()
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def _read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise Dropped(self._buffer)
        self._buffer += data
