"""Driving the webmail in Debian's Chromium, headless, through Playwright (never a browser
that Playwright downloads), and watching what the page asks of the network."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parents[1] / "webmail" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """A browser context whose every request off the app's origin (and `also`'s) is
    refused and noted.

    A request the page's policy already blocks never reaches the network, so it is not
    seen here; anything that would have left the machine is.
    """

    def __init__(
        self,
        browser: Browser,
        origin: str,
        viewport: dict[str, int] = DESKTOP,
        also: tuple[str, ...] = (),
    ) -> None:
        self.origins = {origin, *also}
        self.foreign: list[str] = []
        self.context: BrowserContext = browser.new_context(
            viewport=viewport,  # type: ignore[arg-type]
            accept_downloads=True,
        )
        self.context.route("**/*", self._route)
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _route(self, route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if (
            parts.scheme in ("data", "blob", "about")
            or f"{parts.scheme}://{parts.netloc}" in self.origins
        ):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def close(self) -> None:
        self.context.close()


def sign_in(page: Page, origin: str, address: str, password: str) -> None:
    page.goto(origin + "/")
    page.get_by_label("Email address").fill(address)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Inbox").wait_for()


def axe_violations(page: Page) -> list[dict[str, object]]:
    """axe-core's serious and critical findings on the page as it is now. The engine is
    evaluated through the DevTools protocol, which the page's own CSP does not govern."""
    page.evaluate(AXE.read_text())
    results = page.evaluate(
        "async () => (await axe.run(document)).violations.map("
        "v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [found for found in results if found["impact"] in ("serious", "critical")]


def screenshot_dir() -> Path | None:
    """Where the run keeps its screenshots: `make screenshots` sets it to docs/screenshots."""
    place = os.environ.get("MAILPIPE_SCREENSHOT_DIR")
    return Path(place) if place else None
