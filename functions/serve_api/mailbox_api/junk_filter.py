"""The caller's junk filter settings: allow and block lists, days Junk keeps mail."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from mailbox_api import presentation, request_bodies, request_parts
from mailcore.services import junk_settings
from mailcore.wiring import aws_adapters

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.get("/v1/junk-filter")
def get_junk_filter() -> dict[str, Any]:
    view = junk_settings.read(request_parts.account(router.current_event),
                              aws_adapters().junk_filters)
    return presentation.junk_filter_json(view)


@router.put("/v1/junk-filter")
def put_junk_filter() -> dict[str, Any]:
    event = router.current_event
    settings = request_bodies.junk_filter_settings(request_parts.json_body(event))
    view = junk_settings.save(request_parts.account(event), settings,
                              aws_adapters().junk_filters)
    return presentation.junk_filter_json(view)
