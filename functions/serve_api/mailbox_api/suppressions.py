"""The suppression list of the caller's domain (addresses we stop sending to): see it,
take an address off, or put one on by hand."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from mailbox_api import request_bodies, request_parts
from mailcore.domain.suppression import Suppression
from mailcore.services import suppression
from mailcore.wiring import aws_adapters

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


def _entry_json(entry: Suppression) -> dict[str, Any]:
    return {"address": entry.address, "reason": entry.reason,
            "since": entry.since.isoformat()}


@router.get("/v1/suppressions")
def list_suppressions() -> dict[str, Any]:
    domain, entries = suppression.list_of(request_parts.account(router.current_event),
                                          aws_adapters().suppressions)
    return {"domain": domain, "suppressions": [_entry_json(entry) for entry in entries]}


@router.post("/v1/suppressions")
def add_suppression() -> Response[dict[str, Any]]:
    event = router.current_event
    body = request_parts.json_body(event)
    address = request_bodies.string(body, "address", required=True, max_length=320)
    reason = request_bodies.string(body, "reason", max_length=200)
    entry = suppression.add_by_hand(request_parts.account(event), address or "", reason,
                                    aws_adapters().suppressions)
    return Response(status_code=201, content_type="application/json", body=_entry_json(entry))


@router.delete("/v1/suppressions/<address>")
def remove_suppression(address: str) -> Response[str]:
    suppression.remove_from_list(request_parts.account(router.current_event),
                                 request_parts.path_name(address), aws_adapters().suppressions)
    return Response(status_code=204, body="")
