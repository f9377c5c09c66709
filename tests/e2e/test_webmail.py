"""The webmail in a real Chromium against `mailpipe up`: what a person does, by role and
label, from signing in to sending, reading, replying, forwarding, saving and deleting."""

from __future__ import annotations

import base64
import http.server
import json
import re
import smtplib
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP, default
from pathlib import Path

import boto3
import pytest
from playwright.sync_api import Browser, Locator, Page, Route, expect

from mailcore.adapters.aws.mailboxes import DynamoMailboxRepository
from mailcore.adapters.aws.s3_store import S3RawMessageStore
from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.domain.junk import DecidedBy, JunkVerdict
from mailpipe.local.launcher import StackProcess, free_port, start_stack
from tests.e2e.api_client import ApiClient, wait_until
from tests.e2e.aws_support import Aws
from tests.webmail_support import (
    DESKTOP,
    PHONE,
    Watched,
    axe_violations,
    chromium,
    screenshot_dir,
    sign_in,
)

pytestmark = pytest.mark.e2e
ALICE, BOB, CAROL = "alice@example.test", "bob@example.test", "carol@example.test"
ERIN = "erin@example.test"  # the screenshots' account
FRANK = "frank@example.test"  # more mail than one page
GRACE = "grace@example.test"  # a Bcc recipient
HEIDI = "heidi@example.test"  # what the edge verified of her mail's senders
IVAN = "ivan@example.test"  # junk: the buttons, the keys and the filter's settings
PASSWORDS = {
    ALICE: "alice-password",
    BOB: "bob-password",
    CAROL: "carol-password",
    ERIN: "erin-password",
    FRANK: "frank-password",
    GRACE: "grace-password",
    HEIDI: "heidi-password",
    IVAN: "ivan-password",
}
ATTACHMENT = b"%PDF-1.4\n" + bytes(range(256)) * 40  # binary, so a text round trip would show
# 7 MiB: over the inline limit, so it is uploaded; over Lambda's 6 MB answer, so the API
# hands it out by a link to the store, which the page follows.
BIG = bytes(range(256)) * (7 * 4096)


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    # Mail for elsewhere.example meets a closed port: it stays deferred, with a reason.
    closed = free_port()
    stack = start_stack(
        ["example.test"],
        PASSWORDS,
        "--mx",
        f"elsewhere.example=127.0.0.1:{closed}",
        "--retry-schedule",
        "1h",
    )
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def origin(stack: StackProcess) -> str:
    return f"http://127.0.0.1:{stack.http_port}"


@pytest.fixture
def watched(stack: StackProcess, browser: Browser) -> Iterator[Watched]:
    session = Watched(browser, origin(stack))
    yield session
    assert session.errors == [], "the page threw"
    session.close()


def row(page: Page, subject: str) -> Locator:
    return page.get_by_role("list", name="Messages").get_by_role(
        "button", name=re.compile(re.escape(subject))
    )


def send_from_compose(
    page: Page, to: str, subject: str, text: str, files: list[dict] | None = None
) -> None:
    page.get_by_role("button", name="Compose").click()
    page.get_by_label("To", exact=True).fill(to)
    page.get_by_label("Subject").fill(subject)
    page.get_by_label("Message text").fill(text)
    if files:
        page.get_by_label("Attach files").set_input_files(files)  # type: ignore[arg-type]
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status").filter(has_text="Message sent")).to_be_visible()


def actions(page: Page) -> Locator:
    return page.get_by_role("toolbar", name="Message actions")


def open_folder(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Folders").get_by_role(
        "button", name=re.compile(f"^{name}")
    ).click()
    page.get_by_role("heading", name=name, exact=True).wait_for()


def test_mail_goes_from_one_account_to_another_and_back(
    stack: StackProcess, browser: Browser
) -> None:
    web = origin(stack)
    alice = Watched(browser, web)
    sign_in(alice.page, web, ALICE, PASSWORDS[ALICE])
    send_from_compose(
        alice.page,
        BOB,
        "Quarterly figures",
        "Bob,\nthe figures are attached.",
        [{"name": "figures.pdf", "mimeType": "application/pdf", "buffer": ATTACHMENT}],
    )

    # Bob sees it unread, with its attachment, and reads it.
    bob = Watched(browser, web)
    page = bob.page
    sign_in(page, web, BOB, PASSWORDS[BOB])
    wait_until(
        lambda: ApiClient(stack, BOB, PASSWORDS[BOB]).messages(), 30, what="the message filed"
    )
    page.reload()
    page.get_by_role("heading", name="Inbox").wait_for()
    listed = row(page, "Quarterly figures")
    expect(listed).to_have_accessible_name(
        re.compile(r"^Unread, alice@example\.test\W+has attachments.*Quarterly figures")
    )
    expect(page.get_by_role("button", name=re.compile(r"^Inbox 1 unread"))).to_be_visible()
    listed.click()
    expect(page.get_by_role("heading", name="Quarterly figures")).to_be_visible()
    expect(page.get_by_role("article").get_by_text("the figures are attached.")).to_be_visible()
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download figures.pdf").click()
    assert downloading.value.path().read_bytes() == ATTACHMENT
    expect(listed).not_to_have_accessible_name(re.compile("^Unread"))

    # Save as .eml gives the message's bytes exactly as stored.
    api = ApiClient(stack, BOB, PASSWORDS[BOB])
    [stored] = api.messages()
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Save as .eml").click()
    assert downloading.value.suggested_filename == "Quarterly figures.eml"
    raw = api.get(f"/messages/{stored['id']}/raw").content
    assert downloading.value.path().read_bytes() == raw

    # Bob replies; Alice sees the reply in her Inbox, in one conversation with what she sent.
    page.get_by_role("button", name="Reply", exact=True).click()
    expect(page.get_by_label("To", exact=True)).to_have_value(ALICE)
    expect(page.get_by_label("Message text")).to_have_value(
        re.compile(r"> the figures are attached\.")
    )
    page.get_by_label("Message text").press("Control+Home")
    page.get_by_label("Message text").press_sequentially("Thanks, Alice!")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status").filter(has_text="Message sent")).to_be_visible()

    alice_api = ApiClient(stack, ALICE, PASSWORDS[ALICE])
    wait_until(lambda: alice_api.messages(), 30, what="the reply filed for Alice")
    open_folder(alice.page, "Sent")
    open_folder(alice.page, "Inbox")
    row(alice.page, "Re: Quarterly figures").click()
    expect(alice.page.get_by_role("article").get_by_text("Thanks, Alice!")).to_be_visible()
    conversation = alice.page.get_by_role("region", name="Conversation")
    expect(
        conversation.get_by_role("button", name=re.compile("Quarterly figures.*Sent"))
    ).to_be_visible()

    # Bob forwards the original to Carol: it travels whole, its attachment inside it.
    expect(page.get_by_role("heading", name="Quarterly figures", exact=True)).to_be_visible()
    page.get_by_role("button", name="Forward").click()
    expect(page.get_by_label("Message text")).to_have_value(re.compile("Forwarded message"))
    page.get_by_label("To", exact=True).fill(CAROL)
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status").filter(has_text="Message sent")).to_be_visible()
    carol_api = ApiClient(stack, CAROL, PASSWORDS[CAROL])
    [forwarded] = wait_until(lambda: carol_api.messages(), 30, what="the forward filed for Carol")
    assert forwarded["subject"] == "Fwd: Quarterly figures"
    detail = carol_api.get(f"/messages/{forwarded['id']}").json()
    assert [part["content_type"] for part in detail["attachments"]] == ["message/rfc822"]
    inner = message_from_bytes(
        carol_api.get(f"/messages/{forwarded['id']}/attachments/0").content, policy=default
    )
    [pdf] = [part for part in inner.iter_attachments() if part.get_filename() == "figures.pdf"]
    assert pdf.get_content() == ATTACHMENT

    # Bob deletes the message: it is in Trash, and search still finds it.
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status").filter(has_text="Moved to Trash")).to_be_visible()
    expect(row(page, "Quarterly figures")).to_have_count(0)
    open_folder(page, "Trash")
    expect(row(page, "Quarterly figures")).to_be_visible()
    page.get_by_label("Search mail").fill("figures")
    page.get_by_label("Search mail").press("Enter")
    page.get_by_role("heading", name=re.compile("Search results")).wait_for()
    # The original, from Trash, and Bob's reply and forward in Sent.
    messages = page.get_by_role("list", name="Messages")
    original = messages.get_by_role("button", name=re.compile(r"^alice@example\.test"))
    expect(original).to_have_accessible_name(re.compile("Quarterly figures"))
    expect(row(page, "Quarterly figures")).to_have_count(3)
    for session in (alice, bob):
        assert session.errors == [] and session.foreign == []
        session.close()


class RemoteHost:
    """Another origin on this machine standing in for a tracker: it counts what reaches it."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(200)
                self.send_header("content-type", "image/gif")
                self.end_headers()
                self.wfile.write(PIXEL)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


PIXEL = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")


def hostile_corpus(remote: str) -> dict[str, str]:
    """Subject -> HTML body: what arrives by mail every day, each trying to run a script,
    fetch something off the app's origin, or move the page somewhere else."""
    flag = "top.__pwned"
    return {
        "script tag": f"<p>hi</p><script>{flag}='script'</script>",
        "onerror": f"<img src=x onerror=\"{flag}='onerror'\">",
        "onload": f"<body onload=\"{flag}='onload'\"><p>body</p></body>",
        "javascript link": f"<a id=go href=\"javascript:{flag}='link'\">click me</a>",
        "svg script": f"<svg><script>{flag}='svg'</script><circle r=5 /></svg>",
        "svg onload": f"<svg onload=\"{flag}='svg-onload'\"></svg>",
        "mutation": f"<math><mtext><table><mglyph><style><img src=x onerror=\"{flag}='mx'\">",
        "meta refresh": '<meta http-equiv=refresh content="0;url=http://evil.invalid/">x',
        "form": '<form action="http://evil.invalid/"><input name=q><button>Go</button></form>',
        "css import": f"<style>@import url({remote}/import.css); p{{color:red}}</style><p>css</p>",
        "css url": f'<div style="background:url({remote}/inline.png)">bg</div>'
        f"<style>body{{background-image:url({remote}/body.png)}}</style>",
        "remote image": f'<p>pixel</p><img src="{remote}/pixel.gif" alt=pixel>',
        "srcset": f'<img srcset="{remote}/srcset.gif 2x" alt=srcset>',
        "base": '<base href="http://evil.invalid/"><a href="relative">relative</a>',
        "frames": f'<iframe src="{remote}/frame"></iframe><object data="{remote}/o"></object>'
        f'<embed src="{remote}/e">',
        "link stylesheet": f'<link rel=stylesheet href="{remote}/style.css"><p>linked</p>',
        "video poster": f'<video poster="{remote}/poster.gif"></video>',
        "plain link": '<a href="http://elsewhere.invalid/page">a link</a>',
    }


def deliver_html(stack: StackProcess, to: str, subject: str, body: str) -> None:
    send_over_smtp(
        stack,
        "mallory@elsewhere.example",
        to,
        subject,
        body,
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n",
    )


def test_hostile_html_runs_no_script_fetches_nothing_and_navigates_nowhere(
    stack: StackProcess, browser: Browser
) -> None:
    remote = RemoteHost()
    corpus = hostile_corpus(remote.url)
    for subject, body in corpus.items():
        deliver_html(stack, CAROL, f"hostile: {subject}", body)
    api = ApiClient(stack, CAROL, PASSWORDS[CAROL])
    wait_until(
        lambda: (
            sum(message["subject"].startswith("hostile:") for message in api.messages())
            == len(corpus)
        ),
        60,
        what="the hostile corpus filed",
    )
    web = origin(stack)
    session = Watched(browser, web)
    page = session.page
    sign_in(page, web, CAROL, PASSWORDS[CAROL])
    for subject in corpus:
        row(page, f"hostile: {subject}").click()
        expect(page.get_by_role("heading", name=f"hostile: {subject}")).to_be_visible()
        frame = page.frame_locator("iframe[title='Message content']")
        expect(frame.locator("body")).to_be_attached()
        if subject == "javascript link":
            frame.get_by_text("click me").click()
        if subject == "plain link":
            # Links open in a new tab, which learns nothing of the page that opened it.
            link = frame.get_by_role("link", name="a link")
            expect(link).to_have_attribute("target", "_blank")
            expect(link).to_have_attribute("rel", "noopener noreferrer")
        page.wait_for_timeout(300)  # room for anything that would fire on load
        assert page.evaluate("window.__pwned") is None, subject
        assert page.url == web + "/", subject
        assert [child.url for child in page.main_frame.child_frames] == ["about:srcdoc"], subject
    assert remote.hits == [], "a remote fetch left the page before it was allowed"
    assert session.foreign == [], "a request went off the app's origin"
    assert session.errors == []

    # Remote images are held back, not broken: allowing them for one message fetches them.
    row(page, "hostile: remote image").click()
    expect(page.get_by_text("Remote images in this message were blocked")).to_be_visible()
    session.context.unroute("**/*")
    page.get_by_role("button", name="Show remote images").click()
    wait_until(lambda: "/pixel.gif" in remote.hits, 10, what="the allowed image fetched")
    assert page.evaluate("window.__pwned") is None
    session.close()
    remote.close()


def deliver_text(stack: StackProcess, to: str, subject: str, text: str) -> None:
    send_over_smtp(
        stack,
        "Dave <dave@elsewhere.example>",
        to,
        subject,
        text,
        f"Message-ID: <{subject.replace(' ', '.')}@elsewhere.example>\r\n",
    )


def send_over_smtp(
    stack: StackProcess, sender: str, to: str, subject: str, body: str, more_headers: str
) -> None:
    message = f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n{more_headers}\r\n{body}\r\n"
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as client:
        client.sendmail(sender.split("<")[-1].rstrip(">"), [to], message.encode())


def deliver_and_wait(stack: StackProcess, to: str, subject: str, text: str) -> ApiClient:
    """The message sent over SMTP and filed: the recipient's API session, to look further."""
    deliver_text(stack, to, subject, text)
    api = ApiClient(stack, to, PASSWORDS[to])
    wait_until(
        lambda: any(m["subject"] == subject for m in api.messages()), 30, what=f"{subject!r} filed"
    )
    return api


def focused(page: Page) -> str:
    return str(
        page.evaluate(
            "() => { const e = document.activeElement;"
            " return e.getAttribute('aria-label') || e.labels?.[0]?.textContent || e.textContent; }"
        )
    )


def test_a_person_reads_replies_and_sends_with_the_keyboard_alone(
    stack: StackProcess, browser: Browser
) -> None:
    api = deliver_and_wait(stack, BOB, "Lunch on Friday", "Shall we meet at noon?")
    web = origin(stack)
    session = Watched(browser, web)
    page = session.page
    page.goto(web + "/")
    page.keyboard.press("Tab")
    page.keyboard.type(BOB)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORDS[BOB])
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Inbox").wait_for()
    expect(row(page, "Lunch on Friday")).to_be_visible()

    page.keyboard.press("j")  # the newest message
    assert "Lunch on Friday" in focused(page)
    page.keyboard.press("o")
    expect(page.get_by_role("heading", name="Lunch on Friday")).to_be_visible()
    page.keyboard.press("r")
    expect(page.get_by_role("heading", name="Reply")).to_be_visible()
    # The form takes the focus in an effect after it is drawn: waited for, not raced.
    expect(page.get_by_label("To", exact=True)).to_be_focused()
    assert focused(page) == "To"
    for _ in range(4):  # To -> Cc -> Bcc -> Subject -> Message text
        page.keyboard.press("Tab")
    assert focused(page) == "Message text"
    page.keyboard.press("Control+Home")
    page.keyboard.type("Noon works for me.")
    for _ in range(10):
        page.keyboard.press("Tab")
        if focused(page) == "Send":
            break
    assert focused(page) == "Send"
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Message sent")).to_be_visible()

    sent = wait_until(
        lambda: [m for m in api.messages("Sent") if m["subject"] == "Re: Lunch on Friday"],
        30,
        what="the reply in Sent",
    )
    detail = api.get(f"/messages/{sent[0]['id']}").json()
    assert detail["text"].startswith("Noon works for me.")
    assert "> Shall we meet at noon?" in detail["text"]
    assert detail["to"] == ["Dave <dave@elsewhere.example>"]

    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    expect(page.get_by_role("dialog").get_by_role("cell", name="Reply to all")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert session.errors == [] and session.foreign == []
    session.close()


def test_an_expired_session_asks_to_sign_in_again_and_keeps_the_message_being_written(
    stack: StackProcess, watched: Watched
) -> None:
    web, page = origin(stack), watched.page
    sign_in(page, web, ALICE, PASSWORDS[ALICE])
    page.get_by_role("button", name="Compose").click()
    page.get_by_label("To", exact=True).fill(CAROL)
    page.get_by_label("Subject").fill("Written before the session ended")
    page.get_by_label("Message text").fill("Every word of this must survive.")

    # The token ends while Alice writes: every API call now answers 401, as API Gateway does.
    def expired(route: Route) -> None:
        route.fulfill(
            status=401,
            content_type="application/json",
            body=json.dumps({"message": "Unauthorized"}),
        )

    page.route("**/v1/**", expired)
    # Sending meets the 401, unless the draft's autosave or the list's refresh met it first:
    # either way the session has ended.
    send = page.get_by_role("button", name="Send")
    if send.is_visible():
        send.click()
    expect(page.get_by_role("heading", name="Sign in to mailpipe")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="session has ended")).to_be_visible()
    page.unroute("**/v1/**", expired)

    page.get_by_label("Email address").fill(ALICE)
    page.get_by_label("Password").fill(PASSWORDS[ALICE])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Subject")).to_have_value("Written before the session ended")
    expect(page.get_by_label("Message text")).to_have_value("Every word of this must survive.")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status").filter(has_text="Message sent")).to_be_visible()
    # The token is in session storage only, never in the address bar.
    assert "token" not in page.url and "eyJ" not in page.url


def test_folders_are_made_renamed_and_deleted_and_mail_is_moved_and_flagged(
    stack: StackProcess, watched: Watched
) -> None:
    api = deliver_and_wait(stack, ALICE, "Invoice 42", "Please find the invoice.")
    web, page = origin(stack), watched.page
    sign_in(page, web, ALICE, PASSWORDS[ALICE])
    folders = page.get_by_role("navigation", name="Folders")
    folders.get_by_role("button", name="New folder").click()
    page.get_by_label("New folder name").fill("Receipts")
    page.get_by_role("button", name="Create").click()
    expect(folders.get_by_role("button", name="Receipts")).to_be_visible()

    open_folder(page, "Inbox")
    row(page, "Invoice 42").click()
    page.get_by_role("button", name="Flag", exact=True).click()
    expect(page.get_by_role("button", name="Unflag")).to_be_visible()
    page.get_by_label("Move to").select_option("Receipts")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Moved to Receipts")).to_be_visible()
    expect(row(page, "Invoice 42")).to_have_count(0)

    open_folder(page, "Receipts")
    expect(row(page, "Invoice 42")).to_have_accessible_name(re.compile("^Flagged, "))
    row(page, "Invoice 42").click()
    page.get_by_role("button", name="Mark unread").click()
    expect(row(page, "Invoice 42")).to_have_accessible_name(re.compile("^Unread, Flagged, "))
    folders.get_by_role("button", name="Rename folder").click()
    page.get_by_label("Rename Receipts to").fill("Paid")
    page.get_by_role("button", name="Rename", exact=True).click()
    page.get_by_role("heading", name="Paid", exact=True).wait_for()
    expect(row(page, "Invoice 42")).to_be_visible()
    [moved] = api.messages("Paid")
    assert moved["subject"] == "Invoice 42" and "flagged" in moved["flags"]

    # A folder with mail in it is not deleted; the reason is said in plain words.
    page.on("dialog", lambda dialog: dialog.accept())
    folders.get_by_role("button", name="Delete folder").click()
    expect(
        page.get_by_role("status").filter(has_text=re.compile("empty|not empty", re.I))
    ).to_be_visible()
    row(page, "Invoice 42").click()
    actions(page).get_by_role("button", name="Archive").click()
    expect(page.get_by_role("status").filter(has_text="Archived")).to_be_visible()
    folders.get_by_role("button", name="Delete folder").click()
    expect(folders.get_by_role("button", name="Paid")).to_have_count(0)
    assert [m["subject"] for m in api.messages("Archive")] == ["Invoice 42"]


def test_axe_finds_no_serious_accessibility_problem_on_any_screen(
    stack: StackProcess, watched: Watched
) -> None:
    deliver_text(stack, CAROL, "Accessible", "Plain words.")
    web, page = origin(stack), watched.page
    page.goto(web + "/")
    page.get_by_role("heading", name="Sign in to mailpipe").wait_for()
    problems = {"sign-in": axe_violations(page)}
    sign_in(page, web, CAROL, PASSWORDS[CAROL])
    expect(row(page, "Accessible")).to_be_visible()
    problems["inbox"] = axe_violations(page)
    row(page, "Accessible").click()
    expect(page.get_by_role("heading", name="Accessible")).to_be_visible()
    problems["reader"] = axe_violations(page)
    page.get_by_role("button", name="Compose").click()
    expect(page.get_by_role("heading", name="New message")).to_be_visible()
    problems["compose"] = axe_violations(page)
    page.get_by_role("button", name="Discard").click()
    page.get_by_role("button", name="Keyboard shortcuts").click()
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    problems["shortcuts"] = axe_violations(page)
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Compose").click()
    page.set_viewport_size(PHONE)
    problems["compose on a phone"] = axe_violations(page)
    assert problems == {screen: [] for screen in problems}, json.dumps(problems, indent=1)


def test_drafts_are_saved_as_you_type_and_sent_mail_shows_its_delivery(
    stack: StackProcess, browser: Browser
) -> None:
    # Large attachments are POSTed to the store itself: moto's origin, here.
    web = origin(stack)
    watched = Watched(browser, web, also=(f"http://127.0.0.1:{stack.aws_port}",))
    page = watched.page
    api = ApiClient(stack, BOB, PASSWORDS[BOB])
    sign_in(page, web, BOB, PASSWORDS[BOB])
    page.get_by_role("button", name="Compose").click()
    page.get_by_label("To", exact=True).fill(f"{CAROL}, nobody@elsewhere.example")
    page.get_by_label("Subject").fill("Plans for the weekend")
    page.get_by_label("Message text").fill("First thoughts")
    expect(page.get_by_role("status").filter(has_text="Draft saved")).to_be_visible(timeout=10_000)
    [draft] = [m for m in api.messages("Drafts") if m["subject"] == "Plans for the weekend"]
    page.get_by_label("Message text").press_sequentially(", and second ones.")
    expect(page.get_by_role("status").filter(has_text="Draft saved")).to_be_visible(timeout=10_000)
    drafts = [m for m in api.messages("Drafts") if m["subject"] == "Plans for the weekend"]
    assert [m["id"] for m in drafts] == [draft["id"]]  # one draft, saved again
    assert (
        api.get(f"/messages/{draft['id']}")
        .json()["text"]
        .startswith("First thoughts, and second ones.")
    )

    # A file dropped on the message is attached, as one chosen with the picker is.
    dropped = page.evaluate_handle(
        "() => { const data = new DataTransfer();"
        " data.items.add(new File(['dropped bytes'], 'dropped.txt', {type: 'text/plain'}));"
        " return data; }"
    )
    page.get_by_role("region", name="New message").dispatch_event("drop", {"dataTransfer": dropped})
    expect(page.get_by_role("list", name="Attached files")).to_contain_text("dropped.txt")
    # A large file goes to the store through /v1/uploads before the message names it.
    page.get_by_label("Attach files").set_input_files(
        [{"name": "big.bin", "mimeType": "application/octet-stream", "buffer": BIG}]
    )
    expect(page.get_by_role("list", name="Attached files")).to_contain_text("big.bin")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status").filter(has_text="Message sent")).to_be_visible(
        timeout=20_000)  # a 7 MB attachment, uploaded and signed: seconds on a busy machine
    assert [m for m in api.messages("Drafts") if m["subject"] == "Plans for the weekend"] == []

    open_folder(page, "Sent")
    # The copy in Sent is filed from the queue; the open folder shows it when it lands.
    row(page, "Plans for the weekend").click(timeout=30_000)
    delivery = page.get_by_role("region", name="Delivery status")
    expect(delivery.get_by_role("listitem").filter(has_text=CAROL)).to_contain_text(
        "Delivered", timeout=30_000
    )
    deferred = delivery.get_by_role("listitem").filter(has_text="nobody@elsewhere.example")
    expect(deferred).to_contain_text("Deferred, will retry", timeout=30_000)
    expect(deferred).to_contain_text(re.compile(r"\(.+\)"))  # the reason, in brackets
    attachments = page.get_by_role("region", name="Attachments")
    expect(attachments.get_by_role("button", name="Download dropped.txt")).to_be_visible()
    expect(attachments.get_by_role("listitem").filter(has_text="big.bin")).to_contain_text("7.0 MB")
    with page.expect_download() as downloading:
        attachments.get_by_role("button", name="Download big.bin").click()
    assert downloading.value.path().read_bytes() == BIG
    carol = ApiClient(stack, CAROL, PASSWORDS[CAROL])
    [received] = wait_until(
        lambda: [m for m in carol.messages() if m["subject"] == "Plans for the weekend"],
        30,
        what="Carol's copy",
    )
    parts = carol.get(f"/messages/{received['id']}").json()["attachments"]
    big = next(part for part in parts if part["filename"] == "big.bin")
    assert carol.get(f"/messages/{received['id']}/attachments/{big['index']}").content == BIG
    assert watched.errors == [] and watched.foreign == []
    watched.close()


def deliver_newsletter(stack: StackProcess, to: str) -> None:
    """An HTML message whose image is one of its own parts (cid:)."""
    message = EmailMessage()
    message["From"] = "Harbour Bakery <news@bakery.example>"
    message["To"] = to
    message["Subject"] = "This week at the bakery"
    message.set_content("Fresh sourdough on Saturday.")
    message.add_alternative(
        '<h1 style="color:#8a4b08">Fresh sourdough on Saturday</h1>'
        '<p><img alt="loaf" src="cid:loaf@bakery.example"></p>'
        "<p>Come early: the first twenty loaves are half price.</p>",
        subtype="html",
    )
    html_part = message.get_payload()[1]  # type: ignore[index]
    html_part.add_related(PNG, "image", "png", cid="<loaf@bakery.example>")
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as client:
        client.sendmail("news@bakery.example", [to], message.as_bytes(policy=SMTP))


# A 24x16 PNG, orange: enough for an image that has a size once loaded.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAABgAAAAQCAIAAACDRijCAAAAGklEQVR42mN4ViFCFcQwatCoQaMGjRpEGQIAoc0rH7lBeAcAAAAASUVORK5CYII="
)


def test_inline_images_show_from_the_message_and_a_phone_shows_one_pane_at_a_time(
    stack: StackProcess, browser: Browser, tmp_path: Path
) -> None:
    deliver_newsletter(stack, ERIN)
    for subject, text in [
        ("Minutes of Tuesday's meeting", "Attached are the minutes."),
        ("Lunch on Friday?", "Shall we meet at noon by the harbour?"),
        ("Your train tickets", "Your booking reference is 4K7Q2."),
    ]:
        deliver_text(stack, ERIN, subject, text)
    api = ApiClient(stack, ERIN, PASSWORDS[ERIN])
    wait_until(lambda: len(api.messages()) == 4, 30, what="Erin's four messages filed")
    shots = screenshot_dir() or tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    web = origin(stack)
    for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        session = Watched(browser, web, viewport)
        page = session.page
        sign_in(page, web, ERIN, PASSWORDS[ERIN])
        expect(row(page, "This week at the bakery")).to_be_visible()
        page.screenshot(path=shots / f"inbox-{width}.png")
        row(page, "This week at the bakery").click()
        frame = page.frame_locator("iframe[title='Message content']")
        loaf = frame.get_by_role("img", name="loaf")
        expect(loaf).to_have_attribute("src", re.compile("^data:image/png;base64,"))
        assert loaf.evaluate("image => image.complete && image.naturalWidth") == 24
        if width == "phone":
            # The reader takes the screen; the list comes back with the Back button.
            expect(page.get_by_role("list", name="Messages")).to_be_hidden()
        page.screenshot(path=shots / f"reader-{width}.png")
        if width == "phone":
            page.get_by_role("button", name="Back to the list").click()
            expect(page.get_by_role("list", name="Messages")).to_be_visible()
            expect(page.get_by_role("article")).to_be_hidden()
        page.get_by_role("button", name="Compose").click()
        page.get_by_label("To", exact=True).fill("Bob <bob@example.test>")
        page.get_by_label("Subject").fill("Sourdough on Saturday")
        page.get_by_label("Message text").fill("Shall I get us two loaves?")
        page.screenshot(path=shots / f"compose-{width}.png")
        assert session.errors == [] and session.foreign == []
        session.close()


def test_the_list_brings_the_next_page_as_you_scroll(stack: StackProcess, watched: Watched) -> None:
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as client:
        for number in range(60):
            client.sendmail(
                "dave@elsewhere.example",
                [FRANK],
                f"From: dave@elsewhere.example\r\nTo: {FRANK}\r\n"
                f"Subject: note {number:02d}\r\n\r\nnumber {number}\r\n".encode(),
            )
    api = ApiClient(stack, FRANK, PASSWORDS[FRANK])
    wait_until(lambda: len(api.messages()) == 60, 60, what="sixty messages filed")
    web, page = origin(stack), watched.page
    sign_in(page, web, FRANK, PASSWORDS[FRANK])
    rows = page.get_by_role("list", name="Messages").get_by_role("listitem")
    expect(rows).to_have_count(50)  # one page
    rows.last.scroll_into_view_if_needed()
    expect(rows).to_have_count(60)
    expect(page.get_by_role("button", name="Load more messages")).to_have_count(0)
    shown = sorted(re.search(r"note (\d\d)", text).group(1) for text in rows.all_inner_texts())  # type: ignore[union-attr]
    assert shown == [f"{number:02d}" for number in range(60)]  # each once, none twice


def test_a_draft_is_opened_again_after_a_reload_and_sent_with_its_bcc(
    stack: StackProcess, watched: Watched
) -> None:
    web, page = origin(stack), watched.page
    sign_in(page, web, CAROL, PASSWORDS[CAROL])
    page.get_by_role("button", name="Compose").click()
    page.get_by_label("To", exact=True).fill(ALICE)
    page.get_by_label("Bcc").fill(GRACE)
    page.get_by_label("Subject").fill("Surprise party")
    page.get_by_label("Message text").fill("Saturday at eight.")
    page.get_by_label("Attach files").set_input_files(
        [{"name": "map.txt", "mimeType": "text/plain", "buffer": b"left at the church"}]
    )
    expect(page.get_by_role("status").filter(has_text="Draft saved")).to_be_visible(timeout=10_000)

    page.reload()  # what was in the form is gone from memory; the draft is not
    open_folder(page, "Drafts")
    row(page, "Surprise party").click()
    page.get_by_role("button", name="Edit draft").click()
    expect(page.get_by_label("To", exact=True)).to_have_value(ALICE)
    expect(page.get_by_label("Bcc")).to_have_value(GRACE)
    expect(page.get_by_label("Message text")).to_have_value(re.compile("^Saturday at eight."))
    expect(page.get_by_role("list", name="Attached files")).to_contain_text("map.txt")
    page.get_by_label("Message text").fill("Saturday at eight. Bring a torch.")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status").filter(has_text="Message sent")).to_be_visible()
    expect(row(page, "Surprise party")).to_have_count(0)

    grace = ApiClient(stack, GRACE, PASSWORDS[GRACE])
    [copy] = wait_until(
        lambda: [m for m in grace.messages() if m["subject"] == "Surprise party"],
        30,
        what="the Bcc recipient's copy",
    )
    detail = grace.get(f"/messages/{copy['id']}").json()
    assert detail["text"].startswith("Saturday at eight. Bring a torch.")
    assert detail["bcc"] == [] and GRACE not in " ".join(detail["to"] + detail["cc"])
    [part] = detail["attachments"]
    assert grace.get(f"/messages/{copy['id']}/attachments/{part['index']}").content == (
        b"left at the church"
    )
    assert ApiClient(stack, CAROL, PASSWORDS[CAROL]).messages("Drafts") == []


def edge_hostname(stack: StackProcess) -> str:
    """The name the edge greets with: its Authentication-Results field's authserv-id."""
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as client:
        client.ehlo()
        return client.ehlo_resp.decode().split()[0]  # type: ignore[union-attr]


def store_as_the_edge(stack: StackProcess, to: str, subject: str, sender: str,
                      results: str) -> None:
    """A message from outside stored as the edge stores it, its Authentication-Results field
    on top, and filed from there as everything the edge stores is."""
    aws = Aws(stack)
    raw = (f"Authentication-Results: {edge_hostname(stack)}; {results}\r\n"
           f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{new_message_id()}@crepes.fr>\r\n\r\nAbout the transfer.\r\n")
    envelope = Envelope(mail_from="alice@crepes.fr", rcpt_tos=(to,), peer="192.0.2.1",
                        helo="crepes.fr", tls=True, received_at=datetime.now(UTC))
    S3RawMessageStore(aws.s3, aws.outputs["MessageBucketName"]).put(
        new_message_id(), raw.encode(), envelope)


def test_the_reader_shows_a_verified_sender_and_warns_of_one_that_could_not_be(
    stack: StackProcess, watched: Watched
) -> None:
    store_as_the_edge(stack, HEIDI, "Verified invoice", "Alice <alice@crepes.fr>",
                      "spf=pass smtp.mailfrom=crepes.fr; dkim=pass header.d=crepes.fr"
                      " header.s=mp20261207r header.a=rsa-sha256 header.b=abcd1234;"
                      " dmarc=pass (p=quarantine) header.from=crepes.fr")
    store_as_the_edge(stack, HEIDI, "Urgent transfer", "The CEO <ceo@example.test>",
                      "spf=pass smtp.mailfrom=evil.example; dkim=none;"
                      " dmarc=fail header.from=example.test")
    api = ApiClient(stack, HEIDI, PASSWORDS[HEIDI])
    wait_until(lambda: len(api.messages()) == 2, 30, what="both messages filed")
    web, page = origin(stack), watched.page
    sign_in(page, web, HEIDI, PASSWORDS[HEIDI])

    row(page, "Verified invoice").click()
    expect(page.get_by_role("heading", name="Verified invoice")).to_be_visible()
    verdict = page.get_by_text("Verified: crepes.fr (DKIM, SPF, DMARC pass)")
    expect(verdict).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)
    signer = page.get_by_text("DKIM: pass, signed by crepes.fr (rsa-sha256)")
    expect(signer).to_be_hidden()
    verdict.focus()  # the summary is reached and opened from the keyboard
    page.keyboard.press("Enter")
    expect(signer).to_be_visible()
    problems = {"verified": axe_violations(page)}

    row(page, "Urgent transfer").click()
    expect(page.get_by_role("heading", name="Urgent transfer")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text(
        "Be careful: this message says it is from ceo@example.test, but that could not be"
        " verified.")
    checked = page.get_by_text("DMARC: fail for example.test")
    expect(checked).to_be_hidden()  # each message opens with its details closed
    page.get_by_text("What was checked").click()
    expect(checked).to_be_visible()
    expect(page.get_by_text("DKIM: none, not signed")).to_be_visible()
    problems["warned"] = axe_violations(page)
    assert problems == {"verified": [], "warned": []}, json.dumps(problems, indent=1)


NOT_JUNK_SAID = "Not junk: moved to the Inbox"


def test_junk_and_not_junk_move_mail_by_button_and_by_key_and_teach_by_keywords(
    stack: StackProcess, watched: Watched
) -> None:
    deliver_text(stack, IVAN, "Cheap watches", "Buy now.")
    api = deliver_and_wait(stack, IVAN, "Team lunch", "At noon.")
    web, page = origin(stack), watched.page
    sign_in(page, web, IVAN, PASSWORDS[IVAN])

    row(page, "Cheap watches").click()
    expect(page.get_by_role("heading", name="Cheap watches")).to_be_visible()
    expect(actions(page).get_by_role("button", name="Not junk")).to_have_count(0)
    actions(page).get_by_role("button", name="Junk", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Moved to Junk")).to_be_visible()
    expect(row(page, "Cheap watches")).to_have_count(0)
    open_folder(page, "Junk")
    row(page, "Cheap watches").click()
    expect(actions(page).get_by_role("button", name="Junk", exact=True)).to_have_count(0)
    problems = {"reader in Junk": axe_violations(page)}
    actions(page).get_by_role("button", name="Not junk").click()
    expect(page.get_by_role("status").filter(has_text=NOT_JUNK_SAID)).to_be_visible()
    expect(row(page, "Cheap watches")).to_have_count(0)
    [back] = [m for m in api.messages("Inbox") if m["subject"] == "Cheap watches"]
    assert "$NotJunk" in back["flags"] and "$Junk" not in back["flags"]

    # The same by key: `!` from the Inbox's list, `n` in Junk.
    open_folder(page, "Inbox")
    row(page, "Team lunch").focus()
    page.keyboard.press("!")
    expect(page.get_by_role("status").filter(has_text="Moved to Junk")).to_be_visible()
    [junked] = api.messages("Junk")
    assert junked["subject"] == "Team lunch" and "$Junk" in junked["flags"]
    open_folder(page, "Junk")
    row(page, "Team lunch").click()
    expect(page.get_by_role("heading", name="Team lunch")).to_be_visible()
    page.keyboard.press("n")
    expect(page.get_by_role("status").filter(has_text=NOT_JUNK_SAID)).to_be_visible()
    wait_until(lambda: api.messages("Junk") == [], 10, what="Junk empty again")
    assert sorted(m["subject"] for m in api.messages("Inbox")) == ["Cheap watches", "Team lunch"]
    page.keyboard.press("?")
    expect(page.get_by_role("dialog").get_by_role(
        "cell", name="Not junk (move from Junk to the Inbox)")).to_be_visible()
    page.keyboard.press("Escape")
    assert problems == {"reader in Junk": []}, json.dumps(problems, indent=1)


def test_the_junk_filter_settings_save_an_allow_and_a_block_entry_and_show_a_bad_one(
    stack: StackProcess, watched: Watched
) -> None:
    web, page = origin(stack), watched.page
    sign_in(page, web, IVAN, PASSWORDS[IVAN])
    page.get_by_role("banner").get_by_role("button", name="Junk filter settings").click()
    settings = page.get_by_role("region", name="Junk filter")
    expect(settings.get_by_label("Days to keep junk")).to_have_value("30")
    problems = {"settings": axe_violations(page)}

    settings.get_by_label("Allow list").fill("Friend@Crepes.FR\n")
    settings.get_by_label("Block list").fill("spam.example\nnot a domain")
    settings.get_by_role("button", name="Save").click()
    alert = settings.get_by_role("alert")
    expect(alert).to_contain_text("block[1] 'not a domain' is not an address or a domain")
    expect(settings.get_by_label("Block list")).to_have_attribute("aria-invalid", "true")
    problems["settings with an error"] = axe_violations(page)

    settings.get_by_label("Block list").fill("Spam.Example")
    settings.get_by_label("Days to keep junk").fill("14")
    settings.get_by_role("button", name="Save").click()
    expect(settings.get_by_role("status")).to_have_text("Junk filter settings saved.")
    expect(alert).to_have_count(0)
    expect(settings.get_by_label("Allow list")).to_have_value("friend@crepes.fr")
    filter_ = ApiClient(stack, IVAN, PASSWORDS[IVAN]).get("/junk-filter").json()
    assert (filter_["allow"], filter_["block"], filter_["junk_days"]) == (
        ["friend@crepes.fr"], ["spam.example"], 14)

    page.reload()
    page.get_by_role("heading", name="Inbox").wait_for()
    page.get_by_role("button", name="Junk filter settings").click()
    expect(settings.get_by_label("Block list")).to_have_value("spam.example")
    expect(settings.get_by_label("Days to keep junk")).to_have_value("14")
    assert problems == {"settings": [], "settings with an error": []}, json.dumps(
        problems, indent=1)


def test_the_reader_shows_the_filters_verdict_in_words(
    stack: StackProcess, watched: Watched
) -> None:
    api = deliver_and_wait(stack, IVAN, "Miracle offer", "Act now.")
    [message] = [m for m in api.messages() if m["subject"] == "Miracle offer"]
    # Filed in Junk as the filter files it: the verdict kept with the stored copy.
    aws = Aws(stack)
    dynamodb = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{stack.aws_port}",
                            region_name="us-east-1", aws_access_key_id="local",
                            aws_secret_access_key="local")
    verdict = JunkVerdict(junk=True, decided_by=DecidedBy.CONTENT, score=0.987,
                          reasons=("content",))
    DynamoMailboxRepository(dynamodb, aws.outputs["MailboxTableName"]).update(
        IVAN, message["id"], lambda stored: replace(stored, folder="Junk", junk_verdict=verdict))
    web, page = origin(stack), watched.page
    sign_in(page, web, IVAN, PASSWORDS[IVAN])
    open_folder(page, "Junk")
    row(page, "Miracle offer").click()

    expect(page.get_by_role("note", name="Junk filter verdict")).to_have_text(
        "Put in Junk by the junk filter: its words look like junk you moved before"
        " (99% likely junk).")
    expect(actions(page).get_by_role("button", name="Not junk")).to_be_visible()
    assert axe_violations(page) == []
