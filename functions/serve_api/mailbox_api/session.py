"""POST /v1/session: address and password in, a bearer token out."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from mailbox_api import request_bodies, request_parts
from mailcore.services import login
from mailcore.wiring import aws_adapters

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


@router.post("/v1/session")
def create_session() -> dict[str, Any]:
    body = request_parts.json_body(router.current_event)
    address = request_bodies.string(body, "address", required=True, max_length=320)
    password = request_bodies.string(body, "password", required=True, max_length=256)
    assert address is not None and password is not None
    adapters = aws_adapters()
    logged_in = login.log_in(address, password, request_parts.client_ip(router.current_event),
                             adapters.directory, adapters.throttle)
    return {"token": logged_in.token.token, "expires_in": logged_in.token.expires_in}
