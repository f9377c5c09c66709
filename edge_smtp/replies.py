"""Every SMTP reply the edge composes itself, with its enhanced status code (RFC 3463)."""

SENDER_OK = "250 2.1.0 Sender ok"
RECIPIENT_OK = "250 2.1.5 Recipient ok"
NO_SUCH_ACCOUNT = "550 5.1.1 No such user here"
RELAY_DENIED = "550 5.7.1 Relaying denied"
LOOKUP_UNAVAILABLE = "451 4.3.0 Recipient lookup unavailable, try again later"
STORAGE_UNAVAILABLE = "451 4.3.0 Storage unavailable, try again later"
TEMPORARY_ERROR = "451 4.3.0 Temporary error, try again later"


def queued_as(message_id: str) -> str:
    return f"250 2.0.0 Ok: queued as {message_id}"
