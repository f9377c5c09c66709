"""Folders (IMAP's mailboxes, the API's /v1/mailboxes): list, create, rename, delete,
and a folder's messages a page at a time."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from mailbox_api import presentation, request_bodies, request_parts
from mailcore.services import folders, reading
from mailcore.wiring import aws_adapters

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.get("/v1/mailboxes")
def get_mailboxes() -> dict[str, Any]:
    found = reading.list_mailboxes(request_parts.account(router.current_event),
                                   aws_adapters().mailboxes)
    return {"mailboxes": [presentation.folder_json(folder) for folder in found]}


@router.post("/v1/mailboxes")
def create_mailbox() -> Response[dict[str, Any]]:
    event = router.current_event
    name = request_bodies.string(request_parts.json_body(event), "name", required=True)
    folder = folders.create_folder(request_parts.account(event), name or "",
                                   aws_adapters().mailboxes)
    return Response(status_code=201, content_type="application/json",
                    body=presentation.folder_json(folder))


@router.patch("/v1/mailboxes/<name>")
def rename_mailbox(name: str) -> dict[str, Any]:
    event = router.current_event
    new_name = request_bodies.string(request_parts.json_body(event), "name", required=True)
    folder = folders.rename_folder(request_parts.account(event), request_parts.path_name(name),
                                   new_name or "", aws_adapters().mailboxes)
    return presentation.folder_json(folder)


@router.delete("/v1/mailboxes/<name>")
def delete_mailbox(name: str) -> Response[str]:
    folders.delete_folder(request_parts.account(router.current_event),
                          request_parts.path_name(name), aws_adapters().mailboxes)
    return Response(status_code=204, body="")


@router.get("/v1/mailboxes/<name>/messages")
def get_messages(name: str) -> dict[str, Any]:
    event, mailboxes = router.current_event, aws_adapters().mailboxes
    folder, page = reading.list_messages(request_parts.account(event),
                                         request_parts.path_name(name),
                                         request_parts.limit(event),
                                         event.get_query_string_value("cursor"), mailboxes)
    return presentation.page_json(page, {folder.id: folder.name})


@router.get("/v1/search")
def search() -> dict[str, Any]:
    event, mailboxes = router.current_event, aws_adapters().mailboxes
    account = request_parts.account(event)
    page = reading.search(account, event.get_query_string_value("q") or "",
                          event.get_query_string_value("mailbox"), request_parts.limit(event),
                          event.get_query_string_value("cursor"), mailboxes)
    return presentation.page_json(page, reading.folder_names(account, mailboxes))
