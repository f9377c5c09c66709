"""What every route reads from its request: the caller, their address, the body, paging."""

from __future__ import annotations

import hmac
import ipaddress
import os
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from mailcore.errors import InvalidRequest, Unauthenticated
from mailcore.services import reading


def account(event: APIGatewayProxyEventV2) -> str:
    claims = event.request_context.authorizer.jwt_claim or {}
    username = claims.get("username")
    if not isinstance(username, str) or not username:
        # API Gateway's authorizer stops such requests; this is the second lock.
        raise Unauthenticated("no username claim")
    return username.lower()


# The webmail reaches the API through CloudFront (template.yaml, /v1/*), so API Gateway
# sees CloudFront's address, shared by every viewer of an edge location: the login
# lockout would count them all as one client. The distribution's viewer-request function
# passes the viewer's address, and its origin adds this stack's key, which a caller of the
# HttpApi's own address does not have: only with the key is the address believed.
VIEWER_ADDRESS_HEADER = "x-mailpipe-viewer-address"
ORIGIN_KEY_HEADER = "x-mailpipe-origin-key"


def client_ip(event: APIGatewayProxyEventV2) -> str:
    key = os.environ.get("MAILPIPE_CLOUDFRONT_ORIGIN_KEY", "")
    headers = event.headers or {}
    if key and hmac.compare_digest(headers.get(ORIGIN_KEY_HEADER, "").encode(), key.encode()):
        try:
            return str(ipaddress.ip_address(headers.get(VIEWER_ADDRESS_HEADER, "")))
        except ValueError:
            pass
    return event.request_context.http.source_ip or "unknown"


def json_body(event: APIGatewayProxyEventV2) -> dict[str, Any]:
    try:
        body = event.json_body
    except ValueError as exc:
        raise InvalidRequest("body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    return body


def limit(event: APIGatewayProxyEventV2) -> int:
    text = event.get_query_string_value("limit", "50") or "50"
    if not is_number(text) or not 1 <= int(text) <= reading.MAX_PAGE:
        raise InvalidRequest(f"limit must be an integer from 1 to {reading.MAX_PAGE}", "limit")
    return int(text)


def is_number(text: str) -> bool:
    # str.isdigit() is true for "²" and other digits int() refuses.
    return text.isascii() and text.isdigit()


def path_name(name: str) -> str:
    # Nested folder names travel with "/" encoded as %2F in their one path segment.
    return unquote(name)
