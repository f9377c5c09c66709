"""JSON shapes of the mailbox API, kept beside the domain objects they show."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailcore.domain.mailbox import Folder, StoredMessage

if TYPE_CHECKING:
    from mailcore.services.reading import MessageView


def folder_json(folder: Folder) -> dict[str, Any]:
    return {
        "name": folder.name,
        "role": folder.role.value if folder.role else None,
        "total": folder.total,
        "unread": folder.unread,
    }


def message_summary_json(message: StoredMessage) -> dict[str, Any]:
    summary = message.summary
    return {
        "id": message.message_id,
        "mailbox": message.folder,
        "received_at": message.received_at.isoformat(),
        "from": summary.from_,
        "to": list(summary.to),
        "cc": list(summary.cc),
        "subject": summary.subject,
        "date": summary.date,
        "message_id": summary.message_id_header,
        "snippet": summary.snippet,
        "size": message.size,
        "flags": sorted(message.flags),
        "has_attachments": summary.has_attachments,
        "parse_problem": summary.parse_problem,
    }


def message_detail_json(view: MessageView) -> dict[str, Any]:
    content = view.content
    return {
        **message_summary_json(view.stored),
        "text": content.text,
        "html": content.html,
        "in_reply_to": content.in_reply_to,
        "references": content.references,
        "attachments": [
            {
                "index": attachment.index,
                "filename": attachment.filename,
                "content_type": attachment.content_type,
                "size": attachment.size,
            }
            for attachment in content.attachments
        ],
    }
