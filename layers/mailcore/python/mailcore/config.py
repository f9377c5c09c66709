"""Settings, read once from the process environment by the composition root."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mailcore.errors import MailError


class ConfigurationError(MailError):
    public = "service misconfigured"


@dataclass(frozen=True)
class Settings:
    bucket: str
    table: str
    user_pool_id: str
    user_pool_client_id: str
    domains: tuple[str, ...]
    outgoing_queue_url: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        def required(name: str) -> str:
            value = environ.get(name, "").strip()
            if not value:
                raise ConfigurationError(f"{name} is not set")
            return value

        return cls(
            bucket=required("MAILPIPE_BUCKET"),
            table=required("MAILPIPE_TABLE"),
            user_pool_id=required("MAILPIPE_USER_POOL_ID"),
            user_pool_client_id=required("MAILPIPE_USER_POOL_CLIENT_ID"),
            domains=tuple(
                name.strip() for name in required("MAILPIPE_DOMAINS").split(",") if name.strip()
            ),
            outgoing_queue_url=environ.get("MAILPIPE_OUTGOING_QUEUE_URL") or None,
        )
