"""The HTTP mailbox API (API Gateway HTTP API, JWT authorizer on the Cognito pool)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailcore.adapters.aws.wiring import aws_adapters
from mailcore.errors import InvalidRequest, MailError, Unauthenticated
from mailcore.http_errors import (
    INTERNAL,
    ROUTE_NOT_FOUND,
    HttpError,
    http_error_for,
)
from mailcore.presentation import folder_json, message_detail_json, message_summary_json
from mailcore.services import reading, session

logger = Logger()
app = APIGatewayHttpResolver()


def _account() -> str:
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    username = claims.get("username")
    if not isinstance(username, str) or not username:
        # API Gateway's authorizer stops such requests; this is the second lock.
        raise Unauthenticated("no username claim")
    return username.lower()


def _json_body() -> dict[str, Any]:
    try:
        body = app.current_event.json_body
    except ValueError as exc:
        raise InvalidRequest("body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    return body


def _limit() -> int:
    text = app.current_event.get_query_string_value("limit", "50") or "50"
    if not text.isdigit() or not 1 <= int(text) <= reading.MAX_PAGE:
        raise InvalidRequest(f"limit must be an integer from 1 to {reading.MAX_PAGE}", "limit")
    return int(text)


@app.post("/v1/session")
def create_session() -> dict[str, Any]:
    body = _json_body()
    address, password = body.get("address"), body.get("password")
    if not isinstance(address, str) or not address:
        raise InvalidRequest("address is required", "address")
    if not isinstance(password, str) or not password:
        raise InvalidRequest("password is required", "password")
    token = session.log_in(address, password, aws_adapters().directory)
    return {"token": token.token, "expires_in": token.expires_in}


@app.get("/v1/mailboxes")
def get_mailboxes() -> dict[str, Any]:
    folders = reading.list_mailboxes(_account(), aws_adapters().mailboxes)
    return {"mailboxes": [folder_json(folder) for folder in folders]}


@app.get("/v1/mailboxes/<name>/messages")
def get_messages(name: str) -> dict[str, Any]:
    cursor = app.current_event.get_query_string_value("cursor")
    page = reading.list_messages(_account(), name, _limit(), cursor, aws_adapters().mailboxes)
    return {"messages": [message_summary_json(m) for m in page.messages], "cursor": page.cursor}


@app.get("/v1/messages/<message_id>")
def get_message(message_id: str) -> dict[str, Any]:
    adapters = aws_adapters()
    view = reading.read_message(_account(), message_id, adapters.mailboxes, adapters.store)
    return message_detail_json(view)


@app.get("/v1/messages/<message_id>/raw")
def get_raw(message_id: str) -> Response[bytes]:
    adapters = aws_adapters()
    raw = reading.read_raw(_account(), message_id, adapters.mailboxes, adapters.store)
    return Response(status_code=200, content_type="message/rfc822", body=raw)


def _error_response(error: HttpError) -> Response[dict[str, Any]]:
    return Response(status_code=error.status, content_type="application/json", body=error.body())


def handle_mail_error(exc: MailError) -> Response[dict[str, Any]]:
    error = http_error_for(exc)
    logger.info("request refused", status=error.status, code=error.code, reason=str(exc))
    return _error_response(error)


@app.not_found
def handle_not_found(_: Exception) -> Response[dict[str, Any]]:
    return _error_response(ROUTE_NOT_FOUND)


def handle_unexpected(exc: Exception) -> Response[dict[str, Any]]:
    logger.exception("unhandled error")
    return _error_response(INTERNAL)


# Registered by call: Powertools' exception_handler decorator is untyped.
app.exception_handler(MailError)(handle_mail_error)
app.exception_handler(Exception)(handle_unexpected)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
