"""What every end-to-end test does over HTTP: log in, read a folder, wait for mail."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests

from mailpipe.local.launcher import StackProcess

_T = TypeVar("_T")


def wait_until(condition: Callable[[], _T], timeout: float, interval: float = 0.2,
               what: str = "condition") -> _T:
    """The condition's first truthy value, asked again every `interval` seconds until
    `timeout`; AssertionError naming `what` after that. Every poll in these tests ends."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(interval)


class ApiClient:
    """One account's session with a running stack's HTTP API."""

    def __init__(self, stack: StackProcess, address: str, password: str) -> None:
        self.api = stack.api
        self.session = requests.Session()
        response = self.session.post(f"{self.api}/session", timeout=30,
                                     json={"address": address, "password": password})
        assert response.status_code == 200, response.text
        self.token = response.json()["token"]
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(f"{self.api}{path}", timeout=30, **kwargs)

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.post(f"{self.api}{path}", json=body, timeout=30)

    def put(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.put(f"{self.api}{path}", json=body, timeout=30)

    def folder_total(self, folder: str = "Inbox") -> int:
        folders = self.get("/mailboxes").json()["mailboxes"]
        return int(next(entry["total"] for entry in folders if entry["name"] == folder))

    def messages(self, folder: str = "Inbox", page_size: int = 100) -> list[dict[str, Any]]:
        """Every message of the folder, page by page (until the last page's null cursor)."""
        listed: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.get(f"/mailboxes/{folder}/messages", params={
                "limit": str(page_size), **({"cursor": cursor} if cursor else {})}).json()
            listed += page["messages"]
            cursor = page["cursor"]
            if not cursor:
                return listed

    def wait_for(self, folder: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        """The folder's first page once it holds at least `count` messages."""
        def enough() -> list[dict[str, Any]]:
            response = self.get(f"/mailboxes/{folder}/messages")
            assert response.status_code == 200, response.text
            messages: list[dict[str, Any]] = response.json()["messages"]
            return messages if len(messages) >= count else []

        return wait_until(enough, timeout, what=f"{folder} holding {count} messages")
