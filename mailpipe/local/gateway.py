"""An HTTP API Gateway stand-in: requests become payload-format-2.0 events.

Routes and their JWT authorizers come from the translated template. Answers that
API Gateway itself gives (401 from the authorizer, 404 for no route, 500 when the
integration fails) have API Gateway's own shape, so clients see what AWS sends.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import jwt

from mailpipe.local.functions import FunctionError, LocalFunction
from mailpipe.local.provision import JwtAuthorizer, Route
from mailpipe.webmail import WebmailSite

log = logging.getLogger("mailpipe.local")

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded",
               "application/xml", "application/javascript")


@dataclass(frozen=True)
class _CompiledRoute:
    route: Route
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, route: Route) -> _CompiledRoute:
        regex = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(route.path))
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
        return cls(route, re.compile(f"^{regex}$"))


class JwtVerifier:
    """Checks a bearer token as API Gateway's JWT authorizer does."""

    def __init__(self, aws_endpoint: str) -> None:
        self._aws_endpoint = aws_endpoint.rstrip("/")
        self._clients: dict[str, jwt.PyJWKClient] = {}
        self._lock = threading.Lock()

    def claims(self, authorizer: JwtAuthorizer, header: str | None) -> dict[str, str] | None:
        if not header:
            return None
        token = header[7:] if header.lower().startswith("bearer ") else header
        pool_id = authorizer.issuer.rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            client = self._clients.setdefault(pool_id, jwt.PyJWKClient(
                f"{self._aws_endpoint}/{pool_id}/.well-known/jwks.json"))
        try:
            key = client.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key.key, algorithms=["RS256"], issuer=authorizer.issuer,
                                options={"verify_aud": False, "require": ["exp", "iss"]})
        except jwt.PyJWTError:
            return None
        audience = claims.get("aud", claims.get("client_id"))
        audiences = audience if isinstance(audience, list) else [audience]
        if not set(audiences) & set(authorizer.audience):
            return None
        return {name: value if isinstance(value, str) else json.dumps(value)
                for name, value in claims.items()}


class Gateway:
    def __init__(self, host: str, port: int, routes: list[Route],
                 functions: dict[str, LocalFunction], verifier: JwtVerifier,
                 api_id: str = "local", documents: dict[str, bytes] | None = None,
                 site: WebmailSite | None = None) -> None:
        self._routes = sorted((_CompiledRoute.of(route) for route in routes),
                              key=lambda compiled: compiled.route.path.count("{"))
        self._functions = functions
        self._verifier = verifier
        self._api_id = api_id
        self._documents = documents or {}  # static JSON served without auth (the OpenAPI)
        # The webmail, served beside the API on one origin as CloudFront serves both in
        # AWS (/v1/* to the HttpApi, the rest from the webmail's bucket).
        self._site = site
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                gateway.handle(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

            def __getattr__(self, name: str) -> Any:
                # Any other method (TRACE, PROPFIND, ...) finds no route, as in AWS.
                if name.startswith("do_"):
                    return self.do_GET
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http %s", format % args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        name="gateway")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        url = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            self._send(request, 413, {"message": "Request Entity Too Large"})
            return
        body = request.rfile.read(length) if length else b""
        method = request.command
        if method in ("GET", "HEAD") and url.path in self._documents:
            self._write(request, 200, self._documents[url.path],
                        {"content-type": "application/json"}, [])
            return
        for compiled in self._routes:
            match = compiled.pattern.match(url.path)
            if match and compiled.route.method in (method, "ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD"):
                break
        else:
            if not self._serve_static(request, method, url.path):
                self._send(request, 404, {"message": "Not Found"})
            return
        route = compiled.route
        claims = None
        if route.authorizer is not None:
            claims = self._verifier.claims(route.authorizer, request.headers.get("Authorization"))
            if claims is None:
                self._send(request, 401, {"message": "Unauthorized"},
                           {"www-authenticate": 'Bearer error="invalid_token"'})
                return
        event = self._event(request, route, url.path, url.query, body,
                            {name: unquote(value) for name, value in match.groupdict().items()},
                            claims)
        try:
            result = self._functions[route.function].invoke(event)
        except FunctionError as exc:
            log.warning("integration failed: %s %s: %s", method, url.path, exc)
            self._send(request, 500, {"message": "Internal Server Error"})
            return
        self._reply(request, result)
        log.debug("%s %s in %.1f ms", method, url.path, (time.monotonic() - started) * 1000)

    def _serve_static(self, request: BaseHTTPRequestHandler, method: str, path: str) -> bool:
        if self._site is None or method not in ("GET", "HEAD"):
            return False
        found = self._site.file(path)
        if found is None:
            return False
        headers = {"content-type": found.content_type, **self._site.headers()}
        body = found.body
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            body = found.gzipped()
            headers["content-encoding"] = "gzip"
            headers["vary"] = "accept-encoding"
        self._write(request, 200, body, headers, [])
        return True

    def _event(self, request: BaseHTTPRequestHandler, route: Route, path: str, query: str,
               body: bytes, path_parameters: dict[str, str],
               claims: dict[str, str] | None) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        query_parameters: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            query_parameters[name] = (f"{query_parameters[name]},{value}"
                                      if name in query_parameters else value)
        content_type = headers.get("content-type", "")
        is_text = not body or (content_type.startswith(_TEXT_TYPES) and _is_utf8(body))
        now = time.time()
        route_key = f"{route.method} {route.path}"
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": self._api_id,
                "domainName": headers.get("host", "localhost"),
                "domainPrefix": self._api_id,
                "http": {
                    "method": request.command,
                    "path": path,
                    "protocol": request.request_version,
                    "sourceIp": request.client_address[0],
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": uuid.uuid4().hex,
                "routeKey": route_key,
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "isBase64Encoded": not is_text,
        }
        if "cookie" in headers:
            event["cookies"] = [part.strip() for part in headers["cookie"].split(";")]
        if query_parameters:
            event["queryStringParameters"] = query_parameters
        if path_parameters:
            event["pathParameters"] = path_parameters
        if claims is not None:
            event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
        if body:
            event["body"] = body.decode() if is_text else base64.b64encode(body).decode()
        return event

    def _reply(self, request: BaseHTTPRequestHandler, result: Any) -> None:
        if not (isinstance(result, dict) and "statusCode" in result):
            # Payload format 2.0: anything else is a 200 JSON body.
            self._send(request, 200, result)
            return
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        headers = {name.lower(): str(value) for name, value in
                   (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name.lower()] = ",".join(str(value) for value in values)
        self._write(request, int(result["statusCode"]), data, headers,
                    result.get("cookies") or [])

    def _send(self, request: BaseHTTPRequestHandler, status: int, document: Any,
              headers: dict[str, str] | None = None) -> None:
        self._write(request, status, json.dumps(document).encode(),
                    {"content-type": "application/json", **(headers or {})}, [])

    def _write(self, request: BaseHTTPRequestHandler, status: int, data: bytes,
               headers: dict[str, str], cookies: list[str]) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name not in ("content-length", "connection", "transfer-encoding"):
                request.send_header(name, value)
        for cookie in cookies:
            request.send_header("set-cookie", cookie)
        request.send_header("content-length", str(len(data)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(data)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True
