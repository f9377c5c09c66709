"""The HTTP mailbox API (API Gateway HTTP API, JWT authorizer on the Cognito pool).

openapi.yaml at the top of the repository describes every route. Each area's routes are
a Router in mailbox_api/ (session, folders, messages, writing); each route reads its
input, calls one mailcore service and shows the result. Errors become HTTP answers here.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailbox_api import (
    autoconfig,
    folders,
    junk_filter,
    messages,
    session,
    suppressions,
    writing,
)
from mailbox_api.errors import INTERNAL, ROUTE_NOT_FOUND, HttpError, http_error_for
from mailcore.errors import MailError, Throttled

logger = Logger()
app = APIGatewayHttpResolver()
for area in (session, folders, messages, writing, autoconfig, suppressions, junk_filter):
    app.include_router(area.router)


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
