"""Mailboxes in one DynamoDB table, by responsibility: `codec` (items and cursors),
`transactions` (all-or-nothing writes and their cancellation reasons), `folders`,
`messages`, `search`, `received` (oldest first); `repository` puts them together. The
table's keys and indexes are `dynamodb_keys`, raw bytes' references
`dynamodb_raw_references`, both beside this package."""

from mailcore.adapters.aws.mailboxes.repository import DynamoMailboxRepository

__all__ = ["DynamoMailboxRepository"]
