"""Logging in to IMAP through mailpipe's one login service, and the identity a session is
opened for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from pymap.config import BackendCapability, IMAPConfig
from pymap.exceptions import InvalidAuth, NotAllowedError
from pymap.interfaces.login import IdentityInterface, LoginInterface
from pymap.interfaces.token import TokensInterface
from pymap.selected import SelectedSet
from pymap.token import AllTokens
from pymap.user import UserMetadata
from pysasl.creds.server import ServerCredentials
from pysasl.identity import Identity

from edge.imap.backend.folders import ImapFolders
from edge.imap.backend.idle import FolderWatch
from edge.imap.backend.session import ImapSession
from edge.imap.backend.storage import ImapStorage
from mailcore.errors import AuthenticationFailed, Throttled
from mailcore.services.login import log_in


class _PasswordGiven(Identity):
    """pysasl keeps a password inside its credentials and only compares it with a stored
    one; here the check is Cognito's, over the network, so the password is taken as
    given and checked by the login service off the event loop."""

    def __init__(self, authcid: str) -> None:
        self._authcid = authcid
        self.secret: str | None = None

    @property
    def authcid(self) -> str:
        return self._authcid

    def compare_authcid(self, authcid: str) -> bool:
        return authcid == self._authcid

    def compare_secret(self, secret: str) -> bool:
        self.secret = secret
        return True

    def get_clear_secret(self) -> str | None:
        return None


class ImapLogin(LoginInterface):
    """Logging in through mailpipe's one login service: the same accounts, passwords and
    lockout as SMTP AUTH and the API."""

    def __init__(self, config: IMAPConfig, storage: ImapStorage,
                 watch: FolderWatch | None = None) -> None:
        self.config = config
        self.storage = storage
        self._tokens = AllTokens(config)
        self._selected_sets: dict[tuple[str, str], SelectedSet] = {}
        self.watch = watch or FolderWatch(storage)

    @property
    def tokens(self) -> TokensInterface:
        return self._tokens

    async def authenticate(self, credentials: ServerCredentials) -> ImapIdentity:
        from pymap.context import socket_info

        peer = socket_info.get().peername_ip
        client = str(peer) if peer is not None else ""
        storage = self.storage
        given = _PasswordGiven(credentials.authcid)
        if not credentials.verify(given) or given.secret is None:
            raise InvalidAuth()  # a mechanism without a password (EXTERNAL, tokens)
        try:
            logged_in = await storage.blocking(log_in, credentials.authcid, given.secret,
                                               client, storage.directory, storage.throttle)
        except Throttled as exc:
            raise InvalidAuth("too many failed logins; try again later") from exc
        except AuthenticationFailed as exc:
            raise InvalidAuth() from exc
        return ImapIdentity(logged_in.account, self)

    async def authorize(self, authenticated: IdentityInterface, authzid: str) -> ImapIdentity:
        if authzid and authzid.lower() != authenticated.name.lower():
            raise InvalidAuth("acting for another account is not allowed")
        assert isinstance(authenticated, ImapIdentity)
        return authenticated

    def folders_of(self, account: str) -> ImapFolders:
        return ImapFolders(account, self.storage, self._selected_sets, self.watch)


class ImapIdentity(IdentityInterface):
    def __init__(self, account: str, login: ImapLogin) -> None:
        self._account = account
        self._login = login

    @property
    def name(self) -> str:
        return self._account

    @property
    def roles(self) -> frozenset[str]:
        return frozenset()

    async def new_token(self, *, expiration: datetime | None = None) -> str | None:
        return None

    @asynccontextmanager
    async def new_session(self) -> AsyncIterator[ImapSession]:
        yield ImapSession(self._account, self._login.config,
                          self._login.folders_of(self._account))

    async def get(self) -> UserMetadata:
        return UserMetadata(self._login.config, self._account)

    async def set(self, metadata: UserMetadata) -> int:
        raise NotAllowedError("accounts are managed with mailpipe user add")

    async def delete(self) -> None:
        raise NotAllowedError("accounts are managed with mailpipe user add")


BACKEND_CAPABILITY = BackendCapability(idle=True, object_id=True, multi_append=True)
