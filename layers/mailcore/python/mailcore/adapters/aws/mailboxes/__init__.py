"""Mailboxes in one DynamoDB table, by responsibility: `schema` (keys and the folder
index), `codec` (items and cursors), `transactions` (all-or-nothing writes and their
cancellation reasons), `folders`, `messages`, `search`; `repository` puts them together.
Raw bytes' references are `dynamodb_raw_references` beside this package."""

from mailcore.adapters.aws.mailboxes.repository import DynamoMailboxRepository

__all__ = ["DynamoMailboxRepository"]
