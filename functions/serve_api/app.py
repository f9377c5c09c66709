"""The HTTP mailbox API (API Gateway HTTP API, JWT authorizer on the Cognito pool).

openapi.yaml at the top of the repository describes every route here. Each route
reads its input, calls one mailcore service and shows the result.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailcore import api_input
from mailcore.adapters.aws.wiring import aws_adapters
from mailcore.errors import InvalidRequest, MailError, MessageNotFound, Throttled, Unauthenticated
from mailcore.http_errors import INTERNAL, ROUTE_NOT_FOUND, HttpError, http_error_for
from mailcore.presentation import (
    attachment_disposition,
    delivery_json,
    folder_json,
    message_detail_json,
    message_summary_json,
    page_json,
)
from mailcore.services import changes, folders, login, reading
from mailcore.services.composing import Submitted
from mailcore.services.reading import Download

logger = Logger()
app = APIGatewayHttpResolver()


def _account() -> str:
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    username = claims.get("username")
    if not isinstance(username, str) or not username:
        # API Gateway's authorizer stops such requests; this is the second lock.
        raise Unauthenticated("no username claim")
    return username.lower()


def _client_ip() -> str:
    return app.current_event.request_context.http.source_ip or "unknown"


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
    if not _is_number(text) or not 1 <= int(text) <= reading.MAX_PAGE:
        raise InvalidRequest(f"limit must be an integer from 1 to {reading.MAX_PAGE}", "limit")
    return int(text)


def _is_number(text: str) -> bool:
    # str.isdigit() is true for "²" and other digits int() refuses.
    return text.isascii() and text.isdigit()


def _path_name(name: str) -> str:
    # Nested folder names travel with "/" encoded as %2F in their one path segment.
    return unquote(name)


def _download(download: Download) -> Response[Any]:
    if download.link is not None:
        # Over Lambda's response limit: the client fetches the bytes from S3 directly.
        return Response(status_code=302, headers={"Location": download.link},
                        content_type="application/json",
                        body={"location": download.link})
    headers = {}
    if download.filename:
        headers["Content-Disposition"] = attachment_disposition(download.filename)
    return Response(status_code=200, content_type=download.content_type,
                    body=download.data or b"", headers=headers)


def _accepted(submitted: Submitted) -> Response[dict[str, Any]]:
    return Response(status_code=202, content_type="application/json",
                    body={"id": submitted.message_id, "message_id": submitted.message_id_header})


# ---- session ---------------------------------------------------------------------------
@app.post("/v1/session")
def create_session() -> dict[str, Any]:
    body = _json_body()
    address = api_input.string(body, "address", required=True, max_length=320)
    password = api_input.string(body, "password", required=True, max_length=256)
    assert address is not None and password is not None
    adapters = aws_adapters()
    logged_in = login.log_in(address, password, _client_ip(), adapters.directory,
                             adapters.throttle)
    return {"token": logged_in.token.token, "expires_in": logged_in.token.expires_in}


# ---- folders ---------------------------------------------------------------------------
@app.get("/v1/mailboxes")
def get_mailboxes() -> dict[str, Any]:
    found = reading.list_mailboxes(_account(), aws_adapters().mailboxes)
    return {"mailboxes": [folder_json(folder) for folder in found]}


@app.post("/v1/mailboxes")
def create_mailbox() -> Response[dict[str, Any]]:
    name = api_input.string(_json_body(), "name", required=True)
    folder = folders.create_folder(_account(), name or "", aws_adapters().mailboxes)
    return Response(status_code=201, content_type="application/json", body=folder_json(folder))


@app.patch("/v1/mailboxes/<name>")
def rename_mailbox(name: str) -> dict[str, Any]:
    new_name = api_input.string(_json_body(), "name", required=True)
    folder = folders.rename_folder(_account(), _path_name(name), new_name or "",
                                   aws_adapters().mailboxes)
    return folder_json(folder)


@app.delete("/v1/mailboxes/<name>")
def delete_mailbox(name: str) -> Response[str]:
    folders.delete_folder(_account(), _path_name(name), aws_adapters().mailboxes)
    return Response(status_code=204, body="")


@app.get("/v1/mailboxes/<name>/messages")
def get_messages(name: str) -> dict[str, Any]:
    mailboxes = aws_adapters().mailboxes
    cursor = app.current_event.get_query_string_value("cursor")
    folder, page = reading.list_messages(_account(), _path_name(name), _limit(), cursor,
                                         mailboxes, mailboxes)
    return page_json(page, {folder.id: folder.name})


@app.get("/v1/search")
def search() -> dict[str, Any]:
    event, mailboxes, account = app.current_event, aws_adapters().mailboxes, _account()
    page = reading.search(account, event.get_query_string_value("q") or "",
                          event.get_query_string_value("mailbox"), _limit(),
                          event.get_query_string_value("cursor"), mailboxes)
    return page_json(page, reading.folder_names(account, mailboxes))


# ---- messages --------------------------------------------------------------------------
@app.get("/v1/messages/<message_id>")
def get_message(message_id: str) -> dict[str, Any]:
    adapters = aws_adapters()
    view = reading.read_message(_account(), message_id, adapters.mailboxes, adapters.store)
    return message_detail_json(view)


@app.patch("/v1/messages/<message_id>")
def change_message(message_id: str) -> dict[str, Any]:
    account, mailboxes = _account(), aws_adapters().mailboxes
    change = api_input.message_change(_json_body())
    changed = changes.change_message(account, message_id, change, mailboxes)
    return message_summary_json(changed, reading.folder_name(account, changed.folder,
                                                             mailboxes))


@app.delete("/v1/messages/<message_id>")
def delete_message(message_id: str) -> dict[str, Any]:
    adapters = aws_adapters()
    result = changes.delete_message(_account(), message_id, adapters.mailboxes,
                                    adapters.mailboxes, adapters.store)
    return {"id": message_id, "result": result.value}


@app.get("/v1/messages/<message_id>/raw")
def get_raw(message_id: str) -> Response[Any]:
    adapters = aws_adapters()
    return _download(reading.read_raw(_account(), message_id, adapters.mailboxes,
                                      adapters.store, adapters.store))


@app.get("/v1/messages/<message_id>/attachments/<index>")
def get_attachment(message_id: str, index: str) -> Response[Any]:
    if not _is_number(index) or len(index) > 6:
        raise MessageNotFound(f"attachment {index!r}")
    adapters = aws_adapters()
    return _download(reading.read_attachment(_account(), message_id, int(index),
                                             adapters.mailboxes, adapters.store,
                                             adapters.store))


@app.get("/v1/messages/<message_id>/delivery")
def get_delivery(message_id: str) -> dict[str, Any]:
    adapters = aws_adapters()
    statuses = reading.delivery_status(_account(), message_id, adapters.mailboxes,
                                       adapters.store, adapters.ledger, adapters.domains)
    return delivery_json(message_id, statuses)


# ---- writing ---------------------------------------------------------------------------
@app.post("/v1/messages")
def send_message() -> Response[dict[str, Any]]:
    request = api_input.compose_request(_json_body())
    return _accepted(aws_adapters().composer.send(_account(), request, _client_ip()))


@app.post("/v1/drafts")
def create_draft() -> Response[dict[str, Any]]:
    request = api_input.compose_request(_json_body())
    draft = aws_adapters().composer.save_draft(_account(), request)
    return Response(status_code=201, content_type="application/json",
                    body=message_summary_json(draft, draft.folder))


@app.put("/v1/drafts/<draft_id>")
def update_draft(draft_id: str) -> dict[str, Any]:
    request = api_input.compose_request(_json_body())
    draft = aws_adapters().composer.save_draft(_account(), request, draft_id)
    return message_summary_json(draft, draft.folder)


@app.post("/v1/drafts/<draft_id>/send")
def send_draft(draft_id: str) -> Response[dict[str, Any]]:
    return _accepted(aws_adapters().composer.send_draft(_account(), draft_id, _client_ip()))


@app.post("/v1/uploads")
def create_upload() -> Response[dict[str, Any]]:
    body = _json_body()
    api_input.string(body, "filename", max_length=api_input.MAX_FILENAME)
    content_type = api_input.string(body, "content_type", max_length=255)
    upload = aws_adapters().composer.create_upload(
        _account(), content_type or "application/octet-stream")
    return Response(status_code=201, content_type="application/json",
                    body={"upload_id": upload.upload_id, "url": upload.form.url,
                          "method": "POST", "fields": upload.form.fields,
                          "max_size": upload.max_size, "expires_in": upload.expires_in})


# ---- errors ----------------------------------------------------------------------------
def _error_response(error: HttpError, headers: dict[str, str] | None = None,
                    ) -> Response[dict[str, Any]]:
    return Response(status_code=error.status, content_type="application/json",
                    body=error.body(), headers=headers)


def handle_mail_error(exc: MailError) -> Response[dict[str, Any]]:
    error = http_error_for(exc)
    logger.info("request refused", status=error.status, code=error.code, reason=str(exc))
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
    return _error_response(error, headers)


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
