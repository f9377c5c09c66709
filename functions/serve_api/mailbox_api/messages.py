"""A message: read it, change its flags or folder, delete it, download it or a part,
and see how its delivery went."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from mailbox_api import presentation, request_bodies, request_parts
from mailcore.adapters.content_disposition import attachment_disposition
from mailcore.errors import MessageNotFound
from mailcore.services import changes, reading
from mailcore.services.reading import Download
from mailcore.wiring import aws_adapters

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.get("/v1/messages/<message_id>")
def get_message(message_id: str) -> dict[str, Any]:
    adapters = aws_adapters()
    # Our Authentication-Results field is the one with the edge's hostname (EdgeHostname).
    view = reading.read_message(request_parts.account(router.current_event), message_id,
                                adapters.mailboxes, adapters.store, adapters.settings.hostname)
    return presentation.message_detail_json(view)


@router.patch("/v1/messages/<message_id>")
def change_message(message_id: str) -> dict[str, Any]:
    event, mailboxes = router.current_event, aws_adapters().mailboxes
    account = request_parts.account(event)
    change = request_bodies.message_change(request_parts.json_body(event))
    changed = changes.change_message(account, message_id, change, mailboxes)
    return presentation.message_summary_json(
        changed, reading.folder_name(account, changed.folder, mailboxes))


@router.delete("/v1/messages/<message_id>")
def delete_message(message_id: str) -> dict[str, Any]:
    adapters = aws_adapters()
    result = changes.delete_message(request_parts.account(router.current_event), message_id,
                                    adapters.mailboxes, adapters.store)
    return {"id": message_id, "result": result.value}


@router.get("/v1/messages/<message_id>/raw")
def get_raw(message_id: str) -> Response[Any]:
    adapters = aws_adapters()
    return _download(reading.read_raw(request_parts.account(router.current_event), message_id,
                                      adapters.mailboxes, adapters.store))


@router.get("/v1/messages/<message_id>/attachments/<index>")
def get_attachment(message_id: str, index: str) -> Response[Any]:
    if not request_parts.is_number(index) or len(index) > 6:
        raise MessageNotFound(f"attachment {index!r}")
    adapters = aws_adapters()
    return _download(reading.read_attachment(request_parts.account(router.current_event),
                                             message_id, int(index), adapters.mailboxes,
                                             adapters.store))


@router.get("/v1/messages/<message_id>/delivery")
def get_delivery(message_id: str) -> dict[str, Any]:
    adapters = aws_adapters()
    statuses = reading.delivery_status(request_parts.account(router.current_event), message_id,
                                       adapters.mailboxes, adapters.store, adapters.ledger,
                                       adapters.domains)
    return presentation.delivery_json(message_id, statuses)


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
