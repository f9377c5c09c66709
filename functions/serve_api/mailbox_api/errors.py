"""The one place where domain errors become HTTP answers: {"error": {"code", "message"}}."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailcore.domain.identity import IdentityRefused, NotYourIdentity
from mailcore.errors import (
    AuthenticationFailed,
    Conflict,
    FolderNotFound,
    InvalidRequest,
    MailError,
    MessageNotFound,
    PermanentFailure,
    RecipientSuppressed,
    Throttled,
    TooLarge,
    TransientFailure,
    Unauthenticated,
)


@dataclass(frozen=True)
class HttpError:
    status: int
    code: str
    message: str
    field: str | None = None

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return {"error": error}


ROUTE_NOT_FOUND = HttpError(404, "not_found", "no such route")
INTERNAL = HttpError(500, "internal", "internal error")

_BY_TYPE: list[tuple[type[MailError], int, str]] = [
    (RecipientSuppressed, 400, "suppressed"),
    (InvalidRequest, 400, "invalid_request"),
    (NotYourIdentity, 403, "not_your_identity"),
    (IdentityRefused, 400, "invalid_request"),
    (Unauthenticated, 401, "unauthenticated"),
    (AuthenticationFailed, 401, "invalid_credentials"),
    (MessageNotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (TooLarge, 413, "too_large"),
    (Throttled, 429, "throttled"),
    (FolderNotFound, 404, "not_found"),
    (TransientFailure, 503, "unavailable"),
    (PermanentFailure, 500, "internal"),
]


def http_error_for(exc: MailError) -> HttpError:
    for error_type, status, code in _BY_TYPE:
        if isinstance(exc, error_type):
            field = exc.field if isinstance(exc, InvalidRequest) else None
            return HttpError(status, code, exc.public, field)
    return INTERNAL
