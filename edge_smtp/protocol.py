"""aiosmtpd's SMTP protocol, made strict: enhanced codes on every reply, limits,
draining at shutdown, and credential checks that never block the event loop."""

from __future__ import annotations

from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from aws_lambda_powertools import Logger

from edge_smtp import replies
from edge_smtp.sessions import SessionRegistry

logger = Logger(child=True)

# aiosmtpd decodes the AUTH exchange and hands the credentials to a synchronous
# callback; this marks them for verification off the loop instead (see _verify).
_VERIFY_LATER = "verify later"


class EdgeSMTP(SMTP):
    def __init__(self, handler: Any, *, registry: SessionRegistry, max_errors: int,
                 proxy_protocol: bool, **kwargs: Any) -> None:
        super().__init__(handler, authenticator=self._defer_verification, **kwargs)
        self.registry = registry
        self._max_errors = max_errors
        self._proxy_protocol = proxy_protocol
        self._errors = 0
        self._greeted = False
        self._in_ehlo = False

    # -- session admission and shutdown ------------------------------------------------------
    async def _handle_client(self) -> None:
        refusal = self.registry.admit(self)
        if refusal is None and not self._proxy_protocol:
            refusal = self.registry.identify(self, self.client_address)
        if refusal is not None:
            logger.info("session refused", peer=self.client_address, reply=refusal)
            self.close_with(refusal)
            self.registry.release(self)
            return
        try:
            await super()._handle_client()
        finally:
            self.registry.release(self)

    @property
    def client_address(self) -> str:
        """The real client: from the PROXY header behind a load balancer, else the peer."""
        # Also read by aiosmtpd's inspect.getmembers() during __init__, before any session.
        if getattr(self, "session", None) is None:
            return ""
        assert self.session is not None
        proxy = self.session.proxy_data
        if proxy is not None and getattr(proxy, "src_addr", None):
            return str(proxy.src_addr)
        peer = self.session.peer
        return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "")

    @property
    def in_transaction(self) -> bool:
        envelope = getattr(self, "envelope", None)
        return envelope is not None and envelope.mail_from is not None

    def close_with(self, reply: str) -> None:
        # The session is over for the limits and for draining, even while a TLS
        # transport still waits for the client's close_notify.
        self.registry.release(self)
        if self.transport is None or self.transport.is_closing():
            return
        self._writer.write(reply.encode("ascii") + b"\r\n")
        # close() sends what is buffered before it closes.
        self.transport.close()

    def _timeout_cb(self) -> None:
        # aiosmtpd just drops an idle session; RFC 5321 §4.2.2 says tell the client why.
        logger.info("session timed out", peer=self.client_address)
        self.close_with(replies.TIMEOUT)

    async def smtp_DATA(self, arg: str) -> None:
        await super().smtp_DATA(arg)
        if self.registry.draining:
            self.close_with(replies.SHUTTING_DOWN)

    # -- replies -----------------------------------------------------------------------------
    async def smtp_EHLO(self, hostname: str) -> None:
        self._in_ehlo = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._in_ehlo = False

    async def push(self, status: Any) -> None:
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else str(status)
        if not self._greeted:
            self._greeted = True  # the greeting carries no enhanced code
        elif not (self._in_ehlo and text.startswith("250")):
            text = replies.with_enhanced_code(text)
        await super().push(text)
        if text.startswith("5"):
            self._errors += 1
            if self._errors >= self._max_errors:
                logger.info("too many errors", peer=self.client_address, errors=self._errors)
                self.close_with(replies.TOO_MANY_ERRORS)

    # -- AUTH --------------------------------------------------------------------------------
    @staticmethod
    def _defer_verification(server: SMTP, session: Any, envelope: Any, mechanism: str,
                            auth_data: Any) -> AuthResult:
        return AuthResult(success=False, handled=False, auth_data=auth_data,
                          message=_VERIFY_LATER)

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._verify(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._verify(await super().auth_LOGIN(_, args))

    async def _verify(self, result: AuthResult) -> AuthResult:
        if result.message != _VERIFY_LATER:
            return result  # aiosmtpd already answered (bad base64, aborted exchange)
        credentials = result.auth_data
        assert isinstance(credentials, LoginPassword)
        verify = getattr(self.event_handler, "verify_credentials", None)
        if verify is None:
            return AuthResult(success=False, handled=False)
        login = bytes(credentials.login).decode("utf-8", "replace")
        password = bytes(credentials.password).decode("utf-8", "replace")
        reply, account = await verify(self, login, password)
        if account is None:
            return AuthResult(success=False, handled=False, message=reply)
        return AuthResult(success=True, handled=False, auth_data=account, message=reply)

