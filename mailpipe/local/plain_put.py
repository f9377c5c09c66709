"""S3's plainest PutObject answered without moto's request layer: one per accepted message.

Every message the edge accepts is one PutObject into the mail bucket, and the process that
serves moto's S3 runs one request at a time (the GIL). Through moto's Flask application a
10 KiB PutObject cost that process 1.65 ms of CPU (20 connections at once), the backend's
own put_object, its notification included, an eighth of it under cProfile; while the edge
accepted mail that process was the bound of the accept rate (docs/PERFORMANCE.md, 9).
This path costs 0.70 ms.

This middleware answers the plainest form of the call, and only that: path-style on a local
host, no query, only headers that moto stores as metadata or ignores, a bucket without
object lock, moto's default of no IAM checks. It makes the calls moto's
S3Response.put_object makes for such a request, on the same backend: the object is stored,
its notification sent, its metadata, ACL and tags set, and the answer has moto's headers.
Any other request goes to moto as it came. tests/unit/test_plain_put.py checks the object,
the answer and the notification against moto's own path, on generated requests.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from moto import settings
from moto.core.responses import BaseResponse
from moto.iam.models import get_account_id_from
from moto.s3.exceptions import MissingBucket
from moto.s3.models import s3_backends
from moto.s3.utils import metadata_from_headers
from moto.utilities.aws_headers import gen_amzn_requestid_long
from moto.utilities.utils import get_partition
from werkzeug.datastructures import EnvironHeaders

WsgiApp = Callable[..., Iterable[bytes]]

# moto takes the bucket from the path (not the host's first label) for localhost and IPv4.
_LOCAL_HOST = re.compile(r"(?:localhost|\d{1,3}(?:\.\d{1,3}){3})(?::\d{1,5})?")
# A key of unreserved characters (RFC 3986 2.3) whose segments do not start with a dot:
# the same in the raw path as decoded, and not rewritten by any path normalisation.
_PLAIN_PATH = re.compile(
    r"/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/"
    r"((?:[A-Za-z0-9_~-][A-Za-z0-9._~-]*/)*[A-Za-z0-9_~-][A-Za-z0-9._~-]*)")
_SIGV4_S3 = re.compile(r"AWS4-HMAC-SHA256 Credential=[A-Za-z0-9]+/\d{8}/([a-z0-9-]+)/s3/")
_METADATA = re.compile(r"HTTP_X_AMZ_META_[A-Z0-9_]+")
# Headers moto's put_object reads only as metadata, if at all (the checksum is read only
# with x-amz-sdk-checksum-algorithm, which is not here), or the server has dealt with.
_UNREAD = frozenset({
    "HTTP_HOST", "HTTP_AUTHORIZATION", "HTTP_X_AMZ_DATE", "HTTP_X_AMZ_CONTENT_SHA256",
    "HTTP_X_AMZ_CHECKSUM_CRC32", "HTTP_USER_AGENT", "HTTP_ACCEPT_ENCODING", "HTTP_CONNECTION",
    "HTTP_EXPECT", "HTTP_AMZ_SDK_INVOCATION_ID", "HTTP_AMZ_SDK_REQUEST",
})
# What moto's Flask application adds to every S3 answer (flask-cors, and Flask's own
# type for an empty body).
_ANSWER_HEADERS = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "0"),
                   ("Access-Control-Allow-Origin", "*")]


def plain_put(app: WsgiApp) -> WsgiApp:
    """`app` (moto's), with its plainest PutObject answered here."""

    def answering_plain_put(environ: dict[str, Any], start_response: Callable[..., Any]
                            ) -> Iterable[bytes]:
        request = _plain_put(environ)
        if request is None:
            return app(environ, start_response)
        account, partition, bucket_name, key_name, headers = request
        backend = s3_backends[account][partition]
        try:
            bucket = backend.get_bucket(bucket_name)
        except MissingBucket:
            return app(environ, start_response)  # moto's own error answer
        if bucket.object_lock_enabled:
            return app(environ, start_response)
        length = int(environ["CONTENT_LENGTH"])
        body = environ["wsgi.input"].read(length)
        if len(body) < length:
            # The client went away mid-body: nothing is stored (nor announced), as when
            # werkzeug finds the body short under moto.
            start_response("400 BAD REQUEST", _ANSWER_HEADERS)
            return [b""]
        # As S3Response.put_object, for a request with none of the headers it reads:
        # no storage class, encryption, condition, checksum algorithm, lock, ACL, tags,
        # or redirect; the ACL is the bucket's.
        key = backend.put_object(bucket_name, key_name, body, storage="STANDARD")
        key.set_metadata(metadata_from_headers(headers))
        key.set_acl(bucket.acl)
        key.website_redirect_location = None
        backend.put_object_tagging(key, {})
        answer = [(name, str(value)) for name, value in key.response_dict.items()
                  if name != "content-length"]
        answer.append(("x-amzn-requestid", gen_amzn_requestid_long()))  # as moto adds it
        start_response("200 OK", answer + _ANSWER_HEADERS)
        return [b""]

    return answering_plain_put


def _plain_put(environ: dict[str, Any]
               ) -> tuple[str, str, str, str, dict[str, str]] | None:
    """(account, partition, bucket, key, headers as moto sees them) for a plain PutObject;
    None for any other request."""
    if environ.get("REQUEST_METHOD") != "PUT" or environ.get("QUERY_STRING"):
        return None
    if not math.isinf(settings.INITIAL_NO_AUTH_ACTION_COUNT):
        return None  # moto would check IAM policies
    path = _PLAIN_PATH.fullmatch(environ.get("PATH_INFO", ""))
    signed = _SIGV4_S3.match(environ.get("HTTP_AUTHORIZATION", ""))
    if (path is None or signed is None or "%" in environ.get("REQUEST_URI", "%")
            or not _LOCAL_HOST.fullmatch(environ.get("HTTP_HOST", ""))
            or not environ.get("CONTENT_LENGTH", "").isdigit()
            or environ.get("HTTP_X_AMZ_CONTENT_SHA256", "").startswith("STREAMING")
            # moto would take the region from there rather than from the signature
            or BaseResponse.region_from_useragent_regex.search(
                environ.get("HTTP_USER_AGENT", ""))):
        return None
    if "moto.preserved_header_names" in environ:
        return None  # set by moto's own server; cheroot does not
    for name in environ:
        if name.startswith("HTTP_") and name not in _UNREAD and not _METADATA.fullmatch(name):
            return None
    # All of them, as moto gives them to metadata_from_headers: it keeps some of those
    # read for nothing else (x-amz-content-sha256).
    headers = dict(EnvironHeaders(environ))
    # The account as BaseResponse.get_current_account finds it (no x-moto-account-id here).
    key = BaseResponse.access_key_regex.search(environ["HTTP_AUTHORIZATION"])
    account = os.environ.get("MOTO_ACCOUNT_ID") or get_account_id_from(
        key.group("access_key") if key else "AKIAEXAMPLE")
    return account, get_partition(signed.group(1)), path.group(1), path.group(2), headers
