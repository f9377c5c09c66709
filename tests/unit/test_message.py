"""Summaries for display; a message that does not parse is still a message."""

import signal
import time
from email.message import EmailMessage

import pytest

from mailcore.parsing.bounded import attachment_content, bounded, read_content, summarise
from mailcore.parsing.clock import ParseTimeout
from mailcore.parsing.limits import ParseLimits

# A parse that would run for 3 s meets this limit first.
SHORT_CLOCK = ParseLimits(parse_seconds=0.2)

SEED = (
    b"From: Alice <alice@crepes.fr>\r\nTo: Bob <bob@hamburger.edu>\r\n"
    b"Subject: Test Email\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <1@crepes.fr>\r\n\r\nHello\r\nHow are you?\r\n"
)


def test_seed_message_is_summarised_from_its_headers():
    summary = summarise(SEED)
    assert summary.from_ == "Alice <alice@crepes.fr>"
    assert summary.to == ("Bob <bob@hamburger.edu>",)
    assert summary.subject == "Test Email"
    assert summary.date == "2026-11-26T10:00:00+00:00"
    assert summary.message_id_header == "<1@crepes.fr>"
    assert summary.snippet == "Hello How are you?"
    assert summary.has_attachments is False
    assert summary.parse_problem is None


def test_attachment_is_listed_with_its_decoded_size():
    message = EmailMessage()
    message["From"] = "alice@crepes.fr"
    message["To"] = "bob@hamburger.edu"
    message["Subject"] = "Report"
    message.set_content("See attached.")
    message.add_attachment(b"\x00" * 1000, maintype="application", subtype="octet-stream",
                           filename="data.bin")
    raw = message.as_bytes()
    assert summarise(raw).has_attachments is True
    content = read_content(raw)
    assert content.text is not None and content.text.startswith("See attached.")
    [attachment] = content.attachments
    assert (attachment.filename, attachment.content_type, attachment.size) == (
        "data.bin", "application/octet-stream", 1000)


def test_garbage_without_headers_is_summarised_with_a_parse_problem():
    summary = summarise(b"\x00\xff\xfe this is not a mail message\r\n\r\n\x00")
    assert summary.parse_problem is not None
    assert summary.subject == ""


def test_unknown_charset_and_bad_encoded_words_do_not_raise():
    raw = (b"From: =?x-unknown?Q?bad?= <a@b.c>\r\nSubject: =?utf-8?B?!!!?=\r\n"
           b"Content-Type: text/plain; charset=x-unknown\r\n\r\nbody\r\n")
    summary = summarise(raw)
    assert summary.from_  # shown as far as it can be
    assert isinstance(summary.snippet, str)


def test_html_only_message_gets_a_text_snippet():
    raw = (b"From: a@b.c\r\nContent-Type: text/html\r\n\r\n"
           b"<html><body><p>Hi <b>there</b></p></body></html>\r\n")
    assert summarise(raw).snippet == "Hi there"


def _with_inline_image(attach_pdf: bool) -> bytes:
    message = EmailMessage()
    message["Subject"] = "logo"
    message.set_content("text")
    message.add_alternative('<p>hi <img src="cid:logo1@example"></p>', subtype="html")
    message.get_payload()[1].add_related(b"\x89PNG-bytes", "image", "png", cid="<logo1@example>")
    if attach_pdf:
        message.add_attachment(b"%PDF", "application", "pdf", filename="a.pdf")
    return message.as_bytes()


def test_an_inline_image_is_listed_after_the_attachments_with_its_content_id():
    raw = _with_inline_image(attach_pdf=True)
    listed = read_content(raw).attachments
    assert [(part.filename, part.content_id) for part in listed] == [
        ("a.pdf", None), (None, "logo1@example")]
    inline = attachment_content(raw, 1)
    assert inline is not None and inline.data == b"\x89PNG-bytes"
    assert summarise(raw).has_attachments


def test_a_message_with_only_an_inline_image_has_no_attachments_to_show():
    raw = _with_inline_image(attach_pdf=False)
    assert [part.content_id for part in read_content(raw).attachments] == ["logo1@example"]
    assert not summarise(raw).has_attachments


def _parse_for(seconds: float, swallow_first_timeout: bool) -> str:
    """A parse that runs `seconds` of wall time, as a hostile message's might."""
    deadline = time.monotonic() + seconds
    swallowed = not swallow_first_timeout
    while time.monotonic() < deadline:
        try:
            sum(range(10_000))
        except ParseTimeout:
            if swallowed:
                raise
            swallowed = True  # as a gc callback or a __del__ drops what it raised
    return "parsed"


def test_a_parse_past_its_time_falls_back_and_the_timer_is_gone():
    handler = signal.getsignal(signal.SIGALRM)
    assert bounded(b"", lambda raw: _parse_for(3, False), lambda raw, problem: problem,
                   SHORT_CLOCK) == "ParseTimeout"
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is handler


def test_a_timeout_dropped_where_it_was_raised_is_raised_again():
    started = time.monotonic()
    assert bounded(b"", lambda raw: _parse_for(3, True), lambda raw, problem: problem,
                   SHORT_CLOCK) == "ParseTimeout"
    assert time.monotonic() - started < 1


TWO_LEVELS = (
    b"From: a@b.c\r\nSubject: limits\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="o"\r\n\r\n'
    b'--o\r\nContent-Type: multipart/alternative; boundary="i"\r\n\r\n'
    b"--i\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n--i--\r\n"
    b"--o\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--o--\r\n"
)


@pytest.mark.parametrize(("limits", "problem"), [
    (ParseLimits(max_parts=4), "TooManyParts"),  # five lines start with "--"
    (ParseLimits(max_nesting=1), "TooDeeplyNested"),
    (ParseLimits(max_header_block=64), "OversizedHeader"),
    (ParseLimits(max_header_field=40), "OversizedContentField"),
    (ParseLimits(max_content_parameters=2), "TooManyParameters"),
])
def test_a_message_past_a_limit_it_is_given_is_summarised_from_its_header_lines(
        limits, problem):
    assert summarise(TWO_LEVELS).parse_problem is None
    assert summarise(TWO_LEVELS).snippet == "hello"

    summary = summarise(TWO_LEVELS, limits)

    assert (summary.parse_problem, summary.subject, summary.snippet) == (problem, "limits", "")
    assert read_content(TWO_LEVELS, limits).text is None
