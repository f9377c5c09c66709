"""Accounts are Cognito users whose user name is their address."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from mailcore.errors import (
    AuthenticationFailed,
    InvalidCursor,
    InvalidRequest,
    StorageUnavailable,
)
from mailcore.ports import AccountPage, Token

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

_NOT_FOUND = "UserNotFoundException"
_REFUSED = {"NotAuthorizedException", "UserNotFoundException", "UserNotConfirmedException",
            "PasswordResetRequiredException", "InvalidParameterException"}


class CognitoAccountDirectory:
    def __init__(self, client: CognitoIdentityProviderClient, user_pool_id: str,
                 client_id: str) -> None:
        self._client = client
        self._user_pool_id = user_pool_id
        self._client_id = client_id

    def is_account(self, address: str) -> bool:
        try:
            self._client.admin_get_user(UserPoolId=self._user_pool_id, Username=address)
        except ClientError as exc:
            if _error_code(exc) == _NOT_FOUND:
                return False
            raise StorageUnavailable("account lookup failed") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("account lookup failed") from exc
        return True

    def list_accounts(self, limit: int, cursor: str | None) -> AccountPage:
        page: dict[str, Any] = {"UserPoolId": self._user_pool_id, "Limit": limit}
        if cursor:
            page["PaginationToken"] = cursor
        try:
            response = self._client.list_users(**page)
        except ClientError as exc:
            if _error_code(exc) == "InvalidParameterException":
                raise InvalidCursor from exc  # a token this pool did not give out
            raise StorageUnavailable("listing accounts failed") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("listing accounts failed") from exc
        return AccountPage(
            accounts=tuple(user["Username"].lower() for user in response.get("Users", [])
                           if "Username" in user),
            cursor=response.get("PaginationToken") or None)

    def create_account(self, address: str, password: str) -> None:
        """An administrator's act: the account can log in at once with this password."""
        try:
            self._client.admin_create_user(
                UserPoolId=self._user_pool_id,
                Username=address,
                UserAttributes=[{"Name": "email", "Value": address},
                                {"Name": "email_verified", "Value": "true"}],
                MessageAction="SUPPRESS",
            )
            self._client.admin_set_user_password(
                UserPoolId=self._user_pool_id, Username=address, Password=password,
                Permanent=True,
            )
        except ClientError as exc:
            if _error_code(exc) in {"InvalidPasswordException", "UsernameExistsException",
                                    "InvalidParameterException"}:
                raise InvalidRequest(str(exc.response.get("Error", {}).get("Message"))) from exc
            raise StorageUnavailable("account creation failed") from exc

    def authenticate(self, address: str, password: str) -> Token:
        try:
            response = self._client.initiate_auth(
                AuthFlow="USER_PASSWORD_AUTH",
                ClientId=self._client_id,
                AuthParameters={"USERNAME": address, "PASSWORD": password},
            )
        except ClientError as exc:
            if _error_code(exc) in _REFUSED:
                raise AuthenticationFailed(_error_code(exc)) from exc
            raise StorageUnavailable("authentication service failed") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable("authentication service failed") from exc
        result = response.get("AuthenticationResult")
        if not result or "AccessToken" not in result:
            # A challenge (such as a forced password change) is not a session.
            raise AuthenticationFailed(f"challenge {response.get('ChallengeName')}")
        return Token(token=result["AccessToken"], expires_in=int(result.get("ExpiresIn", 3600)))


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
