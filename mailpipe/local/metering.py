"""What the local stack asks of AWS, counted as AWS bills it.

The embedded moto server is wrapped in a WSGI middleware that counts every request by
service and operation and, for DynamoDB, the request units it would cost (from the
sizes of the items written and read). Function invocations are counted with their
duration and the bytes they log. `bench/cost_model.py` turns these into dollars.

Approximations (DynamoDB's own rules, applied to what the middleware can see): an
item's size is the length of its attribute names and values; a write of an item not
in the request (Update, Delete, ConditionCheck) counts one unit, which holds for the
small counter and ledger items we update; a read counts the response's size in 4 KB
units, halved unless strongly consistent.
"""

from __future__ import annotations

import io
import json
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cheroot.wsgi import Server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from mailpipe.local.atomic_requests import atomic_requests

_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/")
_QUERY_CREDENTIAL = re.compile(
    r"X-Amz-Credential=([^&%]+)%2F[^&]*?%2F([a-z0-9-]+)%2Faws4_request")
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}


@dataclass
class Meter:
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    write_units: float = 0.0
    read_units: float = 0.0
    invocations: Counter[str] = field(default_factory=Counter)
    duration_ms: dict[str, float] = field(default_factory=dict)
    log_bytes: Counter[str] = field(default_factory=Counter)
    # Requests signed with these keys are not counted (a benchmark's own observations).
    ignored_access_keys: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            requests = Counter({f"{service}:{operation}": count
                                for (service, operation), count in self.requests.items()})
            totals = {
                "dynamodb_write_units": self.write_units,
                "dynamodb_read_units": self.read_units,
                "invocations": dict(self.invocations),
                "duration_ms": dict(self.duration_ms),
                "log_bytes": dict(self.log_bytes),
            }
        return {"requests": dict(sorted(requests.items())), **totals}

    def invoked(self, function: str, milliseconds: float) -> None:
        with self.lock:
            self.invocations[function] += 1
            self.duration_ms[function] = self.duration_ms.get(function, 0.0) + milliseconds

    def logged(self, function: str, line: str) -> None:
        with self.lock:
            self.log_bytes[function] += len(line.encode()) + 1

    # -- the middleware --------------------------------------------------------------------
    def wrap(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def metered(environ: dict[str, Any], start_response: Callable[..., Any]
                    ) -> Iterable[bytes]:
            access_key, service, operation = identify_request(environ)
            if not service or access_key in self.ignored_access_keys:
                return app(environ, start_response)
            body = b""
            if service == "dynamodb":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = environ["wsgi.input"].read(length) if length else b""
                environ["wsgi.input"] = io.BytesIO(body)
            response = app(environ, start_response)
            # Only what is priced by its answer is read whole here (not S3's bodies).
            inspected = operation == "ReceiveMessage" or (
                service == "dynamodb" and operation in _READS)
            data = b"".join(response) if inspected else b""
            if operation == "ReceiveMessage" and b"Message" not in data.replace(
                    b"ReceiveMessageResponse", b""):
                # An empty receive: Lambda's pollers make these too, but long-polled, a
                # fixed cost per queue rather than one per message.
                operation = "ReceiveMessage(empty)"
            with self.lock:
                self.requests[(service, operation)] += 1
                if service == "dynamodb" and operation in _WRITES:
                    self.write_units += _write_units(operation, body)
                if service == "dynamodb" and operation in _READS:
                    consistent = b'"ConsistentRead":true' in body.replace(b" ", b"")
                    self.read_units += _read_units(data, consistent)
            return [data] if inspected else response

        return metered


class MeteredMotoServer:
    """moto's application, with the meter around it, served by cheroot (CherryPy's server).

    Not moto's ThreadedMotoServer: its server (werkzeug's development server) closes
    the connection after every response and starts a thread for every connection, so
    each AWS call of the local stack paid a TCP handshake and a thread on both sides:
    about 150 new connections a second under the 3,000-message bench. cheroot keeps
    connections alive, and a request is read, run and answered on one of a fixed pool of
    threads. Measured in bench/local_filing.py (3,000 messages, CPU of the process that
    serves moto per message filed): werkzeug 15.9 and 16.0 ms, cheroot 14.5 ms; waitress,
    tried first, 18.4 to 19.6 ms (its I/O thread hands each request to a worker and back).
    Left behind with ThreadedMotoServer: its request handler kept the spelling of S3
    metadata names with underscores (x-amz-meta-my_key); mailpipe sets none.
    """

    THREADS = 16
    # cheroot keeps 10 idle connections at most and closes any other after its answer:
    # the edge alone writes on up to 64 (S3MessageWriter.MAX_CONNECTIONS), so under load
    # most of its PUTs paid a new TCP connection on both sides (2,295 connections left in
    # TIME-WAIT by 3,000 messages from smtp-source; 5 with this limit).
    KEEP_ALIVE_CONNECTIONS = 256

    def __init__(self, meter: Meter, ip_address: str, port: int) -> None:
        self.meter = meter
        self._ip_address = ip_address
        self._port = port
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one the system chose, for port 0)."""
        assert self._server is not None and self._server.socket is not None
        return int(self._server.socket.getsockname()[1])

    def start(self) -> None:
        app = self.meter.wrap(atomic_requests(DomainDispatcherApplication(create_backend_app),
                                              identify_request))
        # timeout: how long a kept-alive connection may sit idle (botocore and the edge's
        # S3 writer notice a closed one and open another).
        self._server = Server((self._ip_address, self._port), app, numthreads=self.THREADS,
                              request_queue_size=128, timeout=60)
        self._server.keep_alive_conn_limit = self.KEEP_ALIVE_CONNECTIONS
        self._server.prepare()  # bound and listening when start() returns
        self._thread = threading.Thread(target=self._server.serve, daemon=True, name="moto")
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()


def identify_request(environ: dict[str, Any]) -> tuple[str, str, str]:
    """(access key, service, operation) of a request; service "" when not an AWS call."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    found = _CREDENTIAL.search(authorization) or _QUERY_CREDENTIAL.search(
        environ.get("QUERY_STRING", ""))
    access_key, service = (found.group(1), found.group(2)) if found else ("", "")
    if target:
        operation = target.rsplit(".", 1)[-1]
        return access_key, service or target.split(".")[0].split("_")[0].lower(), operation
    if service == "s3":
        return access_key, service, _s3_operation(environ)
    if service:
        query = environ.get("QUERY_STRING", "")
        action = re.search(r"(?:^|&)Action=([A-Za-z]+)", query)
        return access_key, service, (action.group(1) if action
                                     else environ.get("REQUEST_METHOD", ""))
    return "", "", ""


def _s3_operation(environ: dict[str, Any]) -> str:
    method = environ.get("REQUEST_METHOD", "")
    path = environ.get("PATH_INFO", "").strip("/")
    has_key = "/" in path
    query = environ.get("QUERY_STRING", "")
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    return {("GET", True): "GetObject", ("GET", False): "ListObjects",
            ("PUT", True): "PutObject", ("HEAD", True): "HeadObject",
            ("DELETE", True): "DeleteObject"}.get((method, has_key), f"{method} bucket")


def _value_size(value: Any) -> int:
    if isinstance(value, dict):
        return sum(len(name) + _value_size(inner) for name, inner in value.items())
    if isinstance(value, list):
        return sum(_value_size(inner) for inner in value)
    return len(str(value).encode())


def _units(item: dict[str, Any]) -> int:
    return max(1, math.ceil(_value_size(item) / 1024))


def _write_units(operation: str, body: bytes) -> float:
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return 1.0
    if operation == "PutItem":
        return _units(request.get("Item", {}))
    if operation == "TransactWriteItems":
        # Transactions cost two units per KB of each item.
        return sum(2 * (_units(item["Put"]["Item"]) if "Put" in item else 1)
                   for item in request.get("TransactItems", []))
    if operation == "BatchWriteItem":
        return sum(_units(entry.get("PutRequest", {}).get("Item", {}))
                   for entries in request.get("RequestItems", {}).values() for entry in entries)
    return 1.0


def _read_units(response: bytes, consistent: bool) -> float:
    units = max(1, math.ceil(len(response) / 4096))
    return units if consistent else units / 2
