"""The IMAP listeners' configuration: the limits a public server needs that pymap leaves to
its host (sizes, times, connections), read from the edge's environment, and pymap's
configuration with mailpipe's capabilities and commands."""

from __future__ import annotations

import ssl
from argparse import Namespace
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from proxyprotocol import ProxyProtocol
from pymap.config import BackendCapability, IMAPConfig
from pymap.parsing.commands import Commands

from edge.imap.backend.idle import IDLE_POLL_SECONDS
from edge.imap.backend.login import BACKEND_CAPABILITY
from edge.imap.commands import mailpipe_commands
from edge.imap.condstore import CONDSTORE
from edge.imap.literals import DEFAULT_LITERAL_BUDGET


@dataclass(frozen=True)
class ImapLimits:
    append_limit: int = 25 * 1024 * 1024  # the largest message, as on SMTP
    idle_seconds: float = 30 * 60  # RFC 3501 5.4: at least 30 minutes once logged in
    login_seconds: float = 60  # before login: enough for a client, little for a squatter
    per_client: int = 20
    per_account: int = 20
    idle_poll_seconds: float = IDLE_POLL_SECONDS  # an idle folder's poll (issue: < 5 s)
    literal_budget: int = DEFAULT_LITERAL_BUDGET
    # A literal is timed by its progress, as SMTP's DATA (Postfix's smtpd_min_data_rate):
    # it starts with literal_grace_seconds, each byte buys 1/min_literal_rate s more, and
    # it never has more than literal_grace_seconds in hand, so a slow but steady client
    # finishes and one that trickles or stalls gives its share of the budget back within
    # a minute rather than the idle time.
    min_literal_rate: float = 500.0
    literal_grace_seconds: float = 60
    # All the time a session may take to log in, whatever it sends meanwhile: a client logs
    # in within a second of connecting; two minutes leave room for a slow link and a client
    # that asks its user for the password with the connection open.
    max_unauthenticated_seconds: float = 120
    # A session's age: a day lets a client that re-issues IDLE every 29 minutes (RFC 2177)
    # stay connected for dozens of IDLEs; it reconnects once a day, as it does after any
    # network change, and no session holds its task's resources for ever.
    max_session_seconds: float = 24 * 3600
    # Commands in one session: mbsync sends one UID FETCH per message it copies and 17
    # commands besides (counted on a 300-message first sync), so a first sync of 10,000
    # messages sends about 10,000, and one with as many APPENDs and flag changes a few times
    # that; a client that keeps a session for a day sends far fewer.
    max_commands: int = 100_000

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], append_limit: int) -> ImapLimits:
        """The limits the edge's environment sets (MAILPIPE_IMAP_*), the defaults otherwise."""
        def number(name: str, default: float) -> float:
            return float(environ.get(name) or default)

        defaults = cls()
        return cls(
            append_limit=append_limit,
            literal_budget=int(number("MAILPIPE_IMAP_LITERAL_BUDGET", defaults.literal_budget)),
            min_literal_rate=number("MAILPIPE_IMAP_MIN_LITERAL_RATE", defaults.min_literal_rate),
            max_unauthenticated_seconds=number("MAILPIPE_IMAP_MAX_UNAUTHENTICATED_SECONDS",
                                               defaults.max_unauthenticated_seconds),
            max_session_seconds=number("MAILPIPE_IMAP_MAX_SESSION_SECONDS",
                                       defaults.max_session_seconds),
            max_commands=int(number("MAILPIPE_IMAP_MAX_COMMANDS", defaults.max_commands)))


class ImapConfig(IMAPConfig):
    def __init__(self, hostname: str, tls_context: ssl.SSLContext | None, starttls: bool,
                 limits: ImapLimits, proxy_protocol: ProxyProtocol | None = None) -> None:
        super().__init__(
            Namespace(passlib_cfg=None, proxy_protocol=None), proxy_protocol=proxy_protocol,
            host=None, port=0, ssl_context=tls_context or ssl.create_default_context(),
            # STARTTLS listener: nothing but STARTTLS before TLS. Implicit TLS listener:
            # TLS from the first byte, so logging in is allowed at once.
            tls_enabled=starttls, reject_dnsbl=False, invalid_user_sleep=0.0,
            max_append_len=limits.append_limit, bad_command_limit=None)
        self.hostname = hostname
        self.limits = limits

    @property
    def backend_capability(self) -> BackendCapability:
        return BACKEND_CAPABILITY

    @property
    def commands(self) -> Commands:
        return mailpipe_commands()

    @property
    def initial_capability(self) -> Sequence[bytes]:
        return [*super().initial_capability, b"SASL-IR"]

    @property
    def login_capability(self) -> Sequence[bytes]:
        return [*super().login_capability, b"NAMESPACE", b"UNSELECT", b"SPECIAL-USE",
                b"ENABLE", CONDSTORE]

    @property
    def greeting(self) -> bytes:
        return b"mailpipe IMAP4rev1 ready " + self.hostname.encode("ascii", "replace")
