"""How deep and how wide a message's MIME structure is followed, by filing's parser
(mailcore/parsing/) and by the IMAP edge's (mailcore/imap_view/) alike: a message is
read the same way wherever it is read, and what lies beyond is shown as one opaque part.

Measured on 2 cores: 400 nested multiparts overflow Python's recursion limit in the email
package, and 16,000 parts take 4 s per parse there, growing faster than linear; 1,000 parts
take under 0.1 s. Dovecot stops at 100 nested parts too (message_max_nested_mime_parts)."""

MAX_NESTING = 100  # multipart/* and message/* levels
MAX_PARTS = 1000  # MIME parts in one message
