"""JSON shapes of the mailbox API (openapi.yaml describes them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailcore.domain.delivery_status import RecipientStatus
from mailcore.domain.junk import MIN_TRAINED_EACH
from mailcore.domain.mailbox import Folder, Page, StoredMessage

if TYPE_CHECKING:
    from mailcore.authentication.display import AuthenticationShown
    from mailcore.services.junk_settings import JunkFilterView
    from mailcore.services.reading import MessageView


def folder_json(folder: Folder) -> dict[str, Any]:
    return {
        "id": folder.id,
        "name": folder.name,
        "role": folder.role.value if folder.role else None,
        "total": folder.total,
        "unread": folder.unread,
    }


def message_summary_json(message: StoredMessage, folder_name: str) -> dict[str, Any]:
    summary = message.summary
    return {
        "id": message.message_id,
        "thread_id": summary.thread_id or message.message_id,
        "mailbox": folder_name,
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
        **message_summary_json(view.stored, view.folder_name),
        "text": content.text,
        "html": content.html,
        "in_reply_to": content.in_reply_to,
        "references": content.references,
        "bcc": list(content.bcc),
        "attachments": [
            {
                "index": attachment.index,
                "filename": attachment.filename,
                "content_type": attachment.content_type,
                "size": attachment.size,
                "content_id": attachment.content_id,
            }
            for attachment in content.attachments
        ],
        "authentication": authentication_json(view.authentication),
        # Where the filter filed this copy and why (issue 29); null: filed before it, or
        # not by it (sent, drafts).
        "junk": (view.stored.junk_verdict.to_document()
                 if view.stored.junk_verdict is not None else None),
    }


def authentication_json(shown: AuthenticationShown | None) -> dict[str, Any] | None:
    """What our edge's Authentication-Results field says; None when the message has none."""
    if shown is None:
        return None
    spf, dmarc, auth = shown.spf, shown.dmarc, shown.auth
    return {
        "from_domain": shown.from_domain,
        "from_verified": shown.from_verified,
        "spf": spf and {"result": spf.result.value, "domain": spf.domain},
        "dkim": [{"result": dkim.result.value, "domain": dkim.domain,
                  "selector": dkim.selector, "algorithm": dkim.algorithm}
                 for dkim in shown.dkim],
        "dmarc": dmarc and {"result": dmarc.result.value, "from_domain": dmarc.from_domain,
                            "policy": dmarc.policy},
        "auth": auth and {"result": auth.result.value, "account": auth.account},
    }


def page_json(page: Page, folder_names: dict[str, str]) -> dict[str, Any]:
    return {
        "messages": [message_summary_json(message, folder_names.get(message.folder,
                                                                     message.folder))
                     for message in page.messages],
        "cursor": page.cursor,
    }


def delivery_json(message_id: str, statuses: list[RecipientStatus]) -> dict[str, Any]:
    return {
        "id": message_id,
        "recipients": [
            {
                "recipient": status.recipient,
                "state": status.state.value,
                "attempts": status.attempts,
                "reply": status.reply or None,
                "next_attempt": status.next_attempt,
                "remote_mta": status.remote_mta,
            }
            for status in statuses
        ],
    }


def junk_filter_json(view: JunkFilterView) -> dict[str, Any]:
    return {"allow": list(view.settings.allow), "block": list(view.settings.block),
            "junk_days": view.settings.junk_days,
            "trained": {"junk": view.trained_junk, "not_junk": view.trained_not_junk,
                        "minimum": MIN_TRAINED_EACH}}
