"""Settings, read once from the process environment by the composition root."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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
    hostname: str = "localhost"
    delivery_mode: str = "relay"  # or "direct" (MX lookups; needs outbound port 25)
    relay_host: str = ""
    relay_secret_arn: str = ""
    mx_overrides: str = ""
    retry_schedule: str = ""
    give_up_after: str = ""
    sending_limit_per_hour: int = 1000  # recipients per account (template parameter)
    dns_server: str = ""  # HOST:PORT of the stack's one DNS server; "" for the system's
    dkim_secret: str = ""  # the secret holding the DKIM keys document; "": none, unsigned
    # The document itself, as ECS puts it into the SMTP edge's environment (its task role
    # may not read the secret: the IMAP container shares that role).
    dkim_keys: str = field(default="", repr=False)  # private keys: never in a log line
    mta_sts_ca_bundle: str = ""  # PEM file of the CAs MTA-STS trusts; "" for the system's
    # The junk lessons queue: where the API and IMAP say which messages' lessons changed.
    junk_lessons_queue_url: str | None = None

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
            hostname=environ.get("MAILPIPE_HOSTNAME") or "localhost",
            delivery_mode=(environ.get("MAILPIPE_DELIVERY_MODE") or "relay").lower(),
            relay_host=environ.get("MAILPIPE_RELAY_HOST", ""),
            relay_secret_arn=environ.get("MAILPIPE_RELAY_SECRET_ARN", ""),
            mx_overrides=environ.get("MAILPIPE_MX_OVERRIDES", ""),
            retry_schedule=environ.get("MAILPIPE_RETRY_SCHEDULE", ""),
            give_up_after=environ.get("MAILPIPE_GIVE_UP_AFTER", ""),
            sending_limit_per_hour=int(environ.get("MAILPIPE_SENDING_LIMIT_PER_HOUR")
                                       or 1000),
            dns_server=environ.get("MAILPIPE_DNS", "").strip(),
            dkim_secret=environ.get("MAILPIPE_DKIM_SECRET", "").strip(),
            dkim_keys=environ.get("MAILPIPE_DKIM_KEYS", ""),
            mta_sts_ca_bundle=environ.get("MAILPIPE_MTA_STS_CA_BUNDLE", "").strip(),
            junk_lessons_queue_url=environ.get("MAILPIPE_JUNK_LESSONS_QUEUE_URL") or None,
        )
