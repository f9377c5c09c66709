"""Delivery status notifications (RFC 3464): the bounce a sender gets when mail fails."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser


@dataclass(frozen=True)
class FailedRecipient:
    address: str
    status: str  # enhanced status code, e.g. 5.1.1 or 4.4.7
    diagnostic: str  # the remote reply or our reason, e.g. "smtp; 550 5.1.1 No such user"
    remote_mta: str | None = None


def build_dsn(
    *,
    reporting_mta: str,
    original_sender: str,
    original_raw: bytes,
    arrival_date: datetime,
    failures: list[FailedRecipient],
    message_id: str,
) -> bytes:
    """A multipart/report DSN to `original_sender`, from the null sender."""
    report = EmailMessage(policy=policy.SMTP)
    report["From"] = f"Mail Delivery System <MAILER-DAEMON@{reporting_mta}>"
    report["To"] = original_sender
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = email.utils.format_datetime(datetime.now(arrival_date.tzinfo))
    report["Message-ID"] = f"<{message_id}.dsn@{reporting_mta}>"
    report["Auto-Submitted"] = "auto-replied"
    report.set_type("multipart/report")
    report.set_param("report-type", "delivery-status")

    lines = [f"This is the mail system at {reporting_mta}.", "",
             "Your message could not be delivered to these recipients:", ""]
    for failure in failures:
        lines.append(f"<{failure.address}>: {failure.diagnostic}")
    human = EmailMessage(policy=policy.SMTP)
    human.set_content("\n".join(lines) + "\n")

    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; {reporting_mta}"
    per_message["Arrival-Date"] = email.utils.format_datetime(arrival_date)
    blocks: list[Message | str] = [per_message]
    for failure in failures:
        block = Message()
        block["Final-Recipient"] = f"rfc822; {failure.address}"
        block["Action"] = "failed"
        block["Status"] = failure.status
        if failure.remote_mta:
            block["Remote-MTA"] = f"dns; {failure.remote_mta}"
        block["Diagnostic-Code"] = failure.diagnostic
        blocks.append(block)
    status = EmailMessage(policy=policy.SMTP)
    status.set_type("message/delivery-status")
    status.set_payload(blocks)

    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(original_raw)
    header_text = "".join(f"{name}: {value}\n" for name, value in headers.items())
    returned = EmailMessage(policy=policy.SMTP)
    returned.set_content(header_text, subtype="rfc822-headers", cte="8bit")

    report.attach(human)
    report.attach(status)
    report.attach(returned)
    return report.as_bytes(policy=policy.SMTP)
