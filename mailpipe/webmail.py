"""The webmail's static files, and the Content-Security-Policy they are served with.

The webmail is plain ES modules with no build step: `webmail/site.json` maps each URL to
a file, ours or one from `webmail/node_modules` (installed from the npm lock file). The
local runtime serves that map on the API's own origin; in AWS the same files go to the
webmail bucket behind CloudFront, which also sends /v1/* to the API, so there too the
page calls the API on its own origin. CloudFront's response-headers policy must carry
the same policy (a test compares the template's with `content_security_policy`).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import mimetypes
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WEBMAIL_DIR = ROOT / "webmail"

# An import map has to be inline (browsers load no external ones), so the policy names
# its hash rather than allowing inline scripts at all.
_IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.DOTALL)


def content_security_policy(index_html: str, connect: tuple[str, ...] = ()) -> str:
    """The page's policy. `connect` names the origins the page talks to besides its own
    (where the API is): the message store's, where large attachments are POSTed (the form
    `/v1/uploads` gives) and large messages and parts are fetched from (the API's 302)."""
    match = _IMPORT_MAP.search(index_html)
    if match is None:
        raise ValueError("index.html has no import map")
    digest = base64.b64encode(hashlib.sha256(match.group(1).encode()).digest()).decode()
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' 'sha256-{digest}'",
            " ".join(["connect-src 'self'", *connect]),
            # A message's HTML is shown in a srcdoc frame, which inherits this policy on top of
            # its own: mail's inline styles need 'unsafe-inline' here (scripts never do), and
            # remote images, once the reader allows them for a message, need https:/http:.
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob: https: http:",
            "frame-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ]
    )


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str

    def gzipped(self) -> bytes:
        return gzip.compress(self.body, compresslevel=9, mtime=0)


class WebmailSite:
    """URL -> file, read from disk at each request so an edited file shows at reload."""

    def __init__(self, directory: Path = WEBMAIL_DIR, connect: tuple[str, ...] = ()) -> None:
        self._directory = directory
        self._connect = connect
        self._routes: dict[str, str] = json.loads((directory / "site.json").read_text())

    def missing(self) -> list[str]:
        return [file for file in self._routes.values() if not (self._directory / file).is_file()]

    def paths(self) -> list[str]:
        return list(self._routes)

    def file(self, path: str) -> StaticFile | None:
        relative = self._routes.get(path)
        if relative is None:
            return None
        location = self._directory / relative
        content_type = mimetypes.guess_type(location.name)[0] or "application/octet-stream"
        if location.suffix in (".mjs", ".js"):
            content_type = "text/javascript"
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        return StaticFile(location.read_bytes(), content_type)

    def headers(self) -> dict[str, str]:
        index = (self._directory / self._routes["/"]).read_text()
        return {
            "content-security-policy": content_security_policy(index, self._connect),
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "cross-origin-opener-policy": "same-origin",
            "permissions-policy": "camera=(), microphone=(), geolocation=()",
            # The files change with the code; the browser asks again each time.
            "cache-control": "no-cache",
        }


_API_META = re.compile(r'(<meta name="mailpipe-api" content=")[^"]*(">)')


# The meta's value for an API on the page's own origin: locally, and in AWS, where
# CloudFront sends /v1/* to the HttpApi.
SAME_ORIGIN = ""


def with_api_origin(index_html: str, api_origin: str) -> str:
    """index.html told where the API is (only the meta changes: the import map, and so
    the policy's hash of it, stays as it is). Any origin other than the page's own would
    also need naming in the policy's connect-src."""
    if not _API_META.search(index_html):
        raise ValueError("index.html has no mailpipe-api meta")
    return _API_META.sub(lambda match: match.group(1) + api_origin + match.group(2), index_html)


def publish(s3: Any, bucket: str, api_origin: str = SAME_ORIGIN,
            site: WebmailSite | None = None, cloudfront: Any = None,
            distribution_id: str | None = None) -> list[str]:
    """Put the site's files in the webmail bucket (CloudFront serves them from there) and,
    given a distribution, have CloudFront fetch them again. Returns the keys written."""
    site = site or WebmailSite()
    written = []
    for path in site.paths():
        found = site.file(path)
        assert found is not None
        key = "index.html" if path == "/" else path.lstrip("/")
        body = found.body
        if key == "index.html":
            body = with_api_origin(body.decode(), api_origin).encode()
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=found.content_type,
                      CacheControl="no-cache")
        written.append(key)
    if cloudfront is not None and distribution_id:
        cloudfront.create_invalidation(DistributionId=distribution_id, InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": ["/*"]},
            "CallerReference": hashlib.sha256(repr(sorted(written)).encode()
                                              + str(time.time()).encode()).hexdigest()[:32],
        })
    return written
