"""Calling the mailbox API's handler as API Gateway does, every answer checked against
openapi.yaml."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.s3_keys import message_key
from mailcore.services.filing import file_inbound
from mailcore.wiring import aws_adapters
from tests.conftest import load_event
from tests.openapi_contract import check_response

BOB, CAROL = "bob@hamburger.edu", "carol@hamburger.edu"


class Context:
    function_name = "serve_api"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
    aws_request_id = "test-request"


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> dict[str, Any]:
        return dict(self.json["error"])


def call(api: Any, method: str, path: str, account: str | None = BOB,
         query: dict[str, str] | None = None, body: Any = None,
         raw_body: str | None = None, client_ip: str = "192.0.2.10") -> Reply:
    event = load_event("apigw_list_messages.json")
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["sourceIp"] = client_ip
    event["queryStringParameters"] = query or {}
    event["rawQueryString"] = "&".join(f"{k}={quote(v)}" for k, v in (query or {}).items())
    event.pop("pathParameters", None)
    if account is None:
        event["requestContext"].pop("authorizer")
    else:
        event["requestContext"]["authorizer"]["jwt"]["claims"]["username"] = account
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["content-type"] = "application/json"
    elif raw_body is not None:
        event["body"] = raw_body
    response = api.lambda_handler(event, Context())
    data = response.get("body") or ""
    payload = base64.b64decode(data) if response.get("isBase64Encoded") else data.encode()
    headers = {name.lower(): value for name, value in (response.get("headers") or {}).items()}
    check_response(method, path, response["statusCode"], headers.get("content-type"), payload)
    return Reply(response["statusCode"], payload, headers)


def deliver(subject: str, *rcpts: str, received_at: datetime | None = None,
            body: str = "body", extra_headers: str = "") -> str:
    """Mail from outside, filed as file_message files it; returns its id."""
    adapters = aws_adapters()
    raw = (f"From: alice@crepes.fr\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{subject.replace(' ', '.')}@crepes.fr>\r\n{extra_headers}"
           f"\r\n{body}\r\n")
    envelope = Envelope(mail_from="alice@crepes.fr", rcpt_tos=rcpts, peer="192.0.2.1",
                        helo="crepes.fr", tls=False,
                        received_at=received_at or datetime.now(UTC))
    key = adapters.store.put(new_message_id(), raw.encode(), envelope)
    return file_inbound(key, adapters.store, adapters.mailboxes, adapters.domains,
                        references=adapters.references, views=adapters.imap_views).message_id


def file_submitted(message_id: str) -> None:
    """What file_message does when the submitted message's object appears."""
    adapters = aws_adapters()
    file_inbound(message_key(message_id), adapters.store, adapters.mailboxes,
                 adapters.domains, adapters.outgoing, references=adapters.references,
                 views=adapters.imap_views)


def counts(api: Any, account: str = BOB) -> dict[str, tuple[int, int]]:
    reply = call(api, "GET", "/v1/mailboxes", account=account)
    return {f["name"]: (f["total"], f["unread"]) for f in reply.json["mailboxes"]}
