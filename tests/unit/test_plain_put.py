"""The plain PutObject answered beside moto (mailpipe/local/plain_put.py): the same object,
answer and notification as moto's own path, and every other request left to moto."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.s3.models import s3_backends
from moto.sqs.models import sqs_backends
from werkzeug.test import EnvironBuilder

from mailcore.domain.ids import new_message_id
from mailcore.s3_keys import message_key
from mailpipe.local.plain_put import plain_put

HOST = "127.0.0.1:4566"
ACCOUNT = "123456789012"  # moto's, for any access key it does not know
MOTO = DomainDispatcherApplication(create_backend_app)
# Varies between two answers of the same request.
_VARYING_HEADERS = {"last-modified", "x-amzn-requestid", "date", "x-amz-version-id"}


class CountingApp:
    """moto's application, counting the requests that reach it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        self.calls += 1
        return MOTO(environ, start_response)


def _request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
             *, host: str = HOST, query: str = "", service: str = "s3") -> dict[str, Any]:
    url = f"http://{host}{path}" + (f"?{query}" if query else "")
    signed = AWSRequest(method, url, headers=dict(headers or {}), data=body)
    auth = S3SigV4Auth if service == "s3" else SigV4Auth
    auth(Credentials("local", "local"), service, "us-east-1").add_auth(signed)
    builder = EnvironBuilder(method=method, path=path, query_string=query or None, data=body,
                             headers={"Host": host, **dict(signed.headers)})
    environ = builder.get_environ()
    environ["CONTENT_LENGTH"] = str(len(body))  # as every client sends it, 0 too
    return environ


def _answer(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]
            ) -> tuple[str, list[tuple[str, str]], bytes]:
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
        started.extend([status, headers])

    body = b"".join(app(environ, start_response))
    return started[0], started[1], body


def _call(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
          query: str = "") -> tuple[str, list[tuple[str, str]], bytes]:
    return _answer(MOTO, _request(method, path, body, headers, query=query))


def _bucket(name: str, *, versioned: bool = False, lock: bool = False,
            acl: str | None = None) -> str:
    """A bucket whose new objects are announced on a queue of the same name."""
    create = {"x-amz-bucket-object-lock-enabled": "true"} if lock else {}
    if acl:
        create["x-amz-acl"] = acl  # which its objects take
    assert _call("PUT", f"/{name}", headers=create)[0] == "200 OK"
    if versioned:
        assert _call("PUT", f"/{name}", b"<VersioningConfiguration><Status>Enabled</Status>"
                     b"</VersioningConfiguration>", query="versioning")[0] == "200 OK"
    queue = sqs_backends[ACCOUNT]["us-east-1"].create_queue(name)
    configuration = (
        "<NotificationConfiguration><QueueConfiguration>"
        f"<Queue>{queue.queue_arn}</Queue><Event>s3:ObjectCreated:*</Event>"
        "</QueueConfiguration></NotificationConfiguration>").encode()
    assert _call("PUT", f"/{name}", configuration, query="notification")[0] == "200 OK"
    return name


def _announced(queue_name: str) -> list[dict[str, Any]]:
    queue = sqs_backends[ACCOUNT]["us-east-1"].get_queue(queue_name)
    records = []
    for message in queue._messages:
        event = json.loads(message.body)
        if "Records" in event:
            records += event["Records"]
    return records


def _comparable_event(record: dict[str, Any]) -> dict[str, Any]:
    s3 = record["s3"]
    return {"eventName": record["eventName"], "eventSource": record["eventSource"],
            "keys": sorted(record), "s3 keys": sorted(s3), "object": {
                name: value for name, value in s3["object"].items() if name != "sequencer"}}


def _stored(bucket: str, key: str) -> dict[str, Any]:
    backend = s3_backends[ACCOUNT]["aws"]
    found = backend.get_object(bucket, key)
    assert found is not None
    return {
        "value": found.value, "metadata": dict(found.metadata), "etag": found.etag,
        "size": found.size, "storage class": found.storage_class,
        "acl": str(found.acl.__dict__) if found.acl else None,
        "checksum": (found.checksum_algorithm, found.checksum_value),
        "encryption": (found.encryption, found.kms_key_id, found.bucket_key_enabled),
        "lock": (found.lock_mode, found.lock_until, found.lock_legal_status),
        "redirect": found.website_redirect_location,
        "versioned": found.version_id != "null",
        "tags": backend.get_object_tagging(found),
    }


def _comparable(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted((name, "" if name.lower() in _VARYING_HEADERS else value)
                  for name, value in headers)


@pytest.fixture()
def moto_alone() -> Iterator[None]:
    with mock_aws():
        yield


_SEGMENT = st.from_regex(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,12}", fullmatch=True)
_KEYS = st.lists(_SEGMENT, min_size=1, max_size=4).map("/".join)
_METADATA = st.dictionaries(
    st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True),
    st.from_regex(r"[!-~]([ -~]{0,30}[!-~])?", fullmatch=True), max_size=4)
_NAMES = itertools.count()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=_KEYS, metadata=_METADATA, body=st.binary(max_size=3000),
       content_type=st.sampled_from([None, "message/rfc822", "application/json"]),
       versioned=st.booleans(), acl=st.sampled_from([None, "public-read"]),
       crc32=st.booleans())
def test_a_plain_put_stores_answers_and_announces_as_moto_does(
        key, metadata, body, content_type, versioned, acl, crc32):
    with mock_aws():
        number = next(_NAMES)
        by_moto = _bucket(f"by-moto-{number}", versioned=versioned, acl=acl)
        by_plain_put = _bucket(f"by-plain-put-{number}", versioned=versioned, acl=acl)
        headers = {f"x-amz-meta-{name}": value for name, value in metadata.items()}
        if content_type:
            headers["Content-Type"] = content_type
        if crc32:
            headers["x-amz-checksum-crc32"] = "AAAAAA=="  # as the edge's writer sends
        moto_answer = _answer(MOTO, _request("PUT", f"/{by_moto}/{key}", body, headers))
        behind = CountingApp()
        answer = _answer(plain_put(behind), _request("PUT", f"/{by_plain_put}/{key}", body,
                                                     headers))

        assert behind.calls == 0, "the plain PutObject was passed to moto"
        assert answer[0] == moto_answer[0] == "200 OK"
        assert _comparable(answer[1]) == _comparable(moto_answer[1])
        assert answer[2] == moto_answer[2]
        assert _stored(by_plain_put, key) == _stored(by_moto, key)
        # What a reader is given back, through moto.
        assert _comparable(_call("GET", f"/{by_plain_put}/{key}")[1]) == _comparable(
            _call("GET", f"/{by_moto}/{key}")[1])
        [announced] = _announced(by_plain_put)
        [announced_by_moto] = _announced(by_moto)
        assert _comparable_event(announced) == _comparable_event(announced_by_moto)


@pytest.mark.parametrize("change", [
    "query", "virtual host", "encoded key", "dot segment", "another header",
    "checksum algorithm", "streaming body", "region in user agent", "no bucket",
    "object lock", "not S3"])
def test_any_other_request_is_answered_by_moto(moto_alone, change):
    _bucket("mail", lock=change == "object lock")
    path, query, host, service = "/mail/inbound/one.eml", "", HOST, "s3"
    headers = {"Content-Type": "message/rfc822", "x-amz-meta-envelope": "{}"}
    if change == "query":
        query = "tagging"
    elif change == "virtual host":
        host = "mail.s3.amazonaws.com"
        path = "/inbound/one.eml"
    elif change == "encoded key":
        path = "/mail/inbound/one%2Eeml"
    elif change == "dot segment":
        path = "/mail/inbound/.hidden/one.eml"
    elif change == "another header":
        headers["x-amz-tagging"] = "kind=mail"
    elif change == "checksum algorithm":
        headers["x-amz-sdk-checksum-algorithm"] = "CRC32"
    elif change == "region in user agent":
        headers["User-Agent"] = "tool/1.0 region/eu-west-1"
    elif change == "no bucket":
        path = "/no-such-bucket/one.eml"
    elif change == "not S3":
        service = "sqs"
    body = b"5\r\nhello\r\n0\r\n\r\n" if change == "streaming body" else b"hello"
    behind = CountingApp()
    environ = _request("PUT", path, body, headers, host=host, query=query, service=service)
    if change == "streaming body":  # after signing, which sets the payload's hash
        environ["HTTP_X_AMZ_CONTENT_SHA256"] = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    status, _, answer = _answer(plain_put(behind), environ)
    assert behind.calls == 1
    if change == "no bucket":
        assert status.startswith("404") and b"NoSuchBucket" in answer


def test_a_body_shorter_than_its_length_is_refused_and_not_stored(moto_alone):
    _bucket("mail")
    environ = _request("PUT", "/mail/inbound/one.eml", b"Subject: hi\r\n\r\n",
                       {"Content-Type": "message/rfc822"})
    environ["CONTENT_LENGTH"] = "100"  # the client went away before the rest
    behind = CountingApp()
    status, _, _ = _answer(plain_put(behind), environ)
    assert (status, behind.calls) == ("400 BAD REQUEST", 0)
    assert s3_backends[ACCOUNT]["aws"].get_object("mail", "inbound/one.eml") is None
    assert _announced("mail") == []


def test_the_plain_put_is_what_the_edge_sends(moto_alone):
    """The edge's S3MessageWriter's request shape (Content-Type, the envelope's metadata,
    its CRC32) is taken here, not passed to moto."""
    _bucket("mail")
    key = message_key(new_message_id())
    behind = CountingApp()
    environ = _request("PUT", f"/mail/{key}", b"Subject: hi\r\n\r\nhello\r\n",
                       {"Content-Type": "message/rfc822",
                        "x-amz-meta-envelope": '{"mail_from": "a@b.test"}',
                        "x-amz-checksum-crc32": "AAAAAA=="})
    status, _, _ = _answer(plain_put(behind), environ)
    assert (status, behind.calls) == ("200 OK", 0)
    stored = s3_backends[ACCOUNT]["aws"].get_object("mail", key)
    assert stored is not None and stored.metadata["x-amz-meta-envelope"] == (
        '{"mail_from": "a@b.test"}')
