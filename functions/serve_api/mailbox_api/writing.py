"""Writing mail: send, drafts, and uploads for large attachments."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from mailbox_api import presentation, request_bodies, request_parts
from mailcore.services.composing import Submitted
from mailcore.wiring import aws_adapters

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.post("/v1/messages")
def send_message() -> Response[dict[str, Any]]:
    event = router.current_event
    request = request_bodies.compose_request(request_parts.json_body(event))
    return _accepted(aws_adapters().composer.send(request_parts.account(event), request,
                                                  request_parts.client_ip(event)))


@router.post("/v1/drafts")
def create_draft() -> Response[dict[str, Any]]:
    event = router.current_event
    request = request_bodies.compose_request(request_parts.json_body(event))
    draft = aws_adapters().composer.save_draft(request_parts.account(event), request)
    return Response(status_code=201, content_type="application/json",
                    body=presentation.message_summary_json(draft, draft.folder))


@router.put("/v1/drafts/<draft_id>")
def update_draft(draft_id: str) -> dict[str, Any]:
    event = router.current_event
    request = request_bodies.compose_request(request_parts.json_body(event))
    draft = aws_adapters().composer.save_draft(request_parts.account(event), request, draft_id)
    return presentation.message_summary_json(draft, draft.folder)


@router.post("/v1/drafts/<draft_id>/send")
def send_draft(draft_id: str) -> Response[dict[str, Any]]:
    event = router.current_event
    return _accepted(aws_adapters().composer.send_draft(request_parts.account(event), draft_id,
                                                        request_parts.client_ip(event)))


@router.post("/v1/uploads")
def create_upload() -> Response[dict[str, Any]]:
    event = router.current_event
    body = request_parts.json_body(event)
    request_bodies.string(body, "filename", max_length=request_bodies.MAX_FILENAME)
    content_type = request_bodies.string(body, "content_type", max_length=255)
    upload = aws_adapters().composer.create_upload(
        request_parts.account(event), content_type or "application/octet-stream")
    return Response(status_code=201, content_type="application/json",
                    body={"upload_id": upload.upload_id, "url": upload.form.url,
                          "method": "POST", "fields": upload.form.fields,
                          "max_size": upload.max_size, "expires_in": upload.expires_in})


def _accepted(submitted: Submitted) -> Response[dict[str, Any]]:
    return Response(status_code=202, content_type="application/json",
                    body={"id": submitted.message_id, "message_id": submitted.message_id_header})
