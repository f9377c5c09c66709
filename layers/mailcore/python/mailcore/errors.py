"""Domain errors. Each says whether the sender (or caller) should try again."""


class MailError(Exception):
    """Base of every mailpipe error. `public` is safe to show; the log keeps the cause."""

    public = "internal error"


class TransientFailure(MailError):
    """Try again later (SMTP 4xx). Anything unclassified is treated as transient."""

    public = "temporary failure, try again later"


class PermanentFailure(MailError):
    """Do not retry (SMTP 5xx)."""

    public = "permanent failure"


class StorageUnavailable(TransientFailure):
    public = "storage unavailable, try again later"


class InvalidAddress(PermanentFailure):
    public = "invalid address"


class MessageNotFound(MailError):
    public = "message not found"


class FolderNotFound(MailError):
    public = "mailbox not found"


class Conflict(MailError):
    """The request contradicts the mailbox's current state (a name already taken)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.public = message


class TooLarge(MailError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.public = message


class Throttled(MailError):
    public = "too many failed attempts, try again later"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LoginsInFlight(Throttled):
    """Attempts still being checked fill the limit: the next may go once they are done."""

    public = "too many logins at once, try again later"


class SendingLimitReached(Throttled):
    public = "sending limit reached, try again later"


class Unauthenticated(MailError):
    """No verified identity came with the request."""

    public = "a valid bearer token is required"


class AuthenticationFailed(MailError):
    public = "invalid credentials"


class InvalidRequest(MailError):
    public = "invalid request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.public = message
        self.field = field


class InvalidCursor(InvalidRequest):
    """A paging cursor that is not one we gave out for this folder and account."""

    def __init__(self) -> None:
        super().__init__("invalid cursor", field="cursor")


class RecipientSuppressed(InvalidRequest):
    """A recipient on the sending domain's suppression list: nothing is sent to it."""


class NotSuppressed(MessageNotFound):
    """The address is not on the list it was to be removed from."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.public = message
