"""The mailbox API as the webmail reaches it in AWS: through CloudFront (/v1/*), where API
Gateway sees CloudFront's address for every viewer of an edge location. The login lockout
must still count each client apart, and a caller of the HttpApi's own address must not
choose the address it is counted under."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailcore.wiring import aws_adapters
from tests.conftest import load_event, load_function
from tests.functional.api_support import CAROL, Context

CLOUDFRONT_EDGE = "130.176.12.34"  # one of CloudFront's origin-facing addresses
GUESSER, NEIGHBOUR = "198.51.100.66", "203.0.113.5"


@pytest.fixture
def api(stack, monkeypatch):
    # The functions' environment as the template gives serve_api, the key included.
    for name, value in stack.functions["ServeApiFunction"].environment.items():
        if name.startswith("MAILPIPE_"):
            monkeypatch.setenv(name, value)
    aws_adapters.cache_clear()
    aws_adapters().directory.create_account(CAROL, "correct horse")
    return load_function("serve_api")


def log_in(api: Any, address: str, password: str, source: str,
           headers: dict[str, str] | None = None) -> int:
    event = load_event("apigw_list_messages.json")
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /v1/session"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/v1/session"
    event["requestContext"]["http"]["method"] = "POST"
    event["requestContext"]["http"]["sourceIp"] = source
    event["requestContext"].pop("authorizer")
    event.pop("pathParameters", None)
    event["headers"].update({"content-type": "application/json", **(headers or {})})
    event["body"] = json.dumps({"address": address, "password": password})
    return int(api.lambda_handler(event, Context())["statusCode"])


def through_cloudfront(viewer: str, key: str) -> dict[str, str]:
    """What the distribution adds: the viewer-request function's address, the origin's key."""
    return {"x-mailpipe-viewer-address": viewer, "x-mailpipe-origin-key": key}


def test_a_guesser_behind_cloudfront_locks_out_only_itself(api, stack):
    key = stack.functions["ServeApiFunction"].environment["MAILPIPE_CLOUDFRONT_ORIGIN_KEY"]
    assert len(key) >= 32
    guesses = [log_in(api, f"user{number}@hamburger.edu", "guess", CLOUDFRONT_EDGE,
                      through_cloudfront(GUESSER, key)) for number in range(11)]
    assert guesses == [401] * 10 + [429]
    # Carol comes through the same edge location, so from the same address to API
    # Gateway: she is her own client, and logs in.
    assert log_in(api, CAROL, "correct horse", CLOUDFRONT_EDGE,
                  through_cloudfront(NEIGHBOUR, key)) == 200
    # The guesser stays locked out whichever address it reaches CloudFront through next.
    assert log_in(api, "user99@hamburger.edu", "guess", "130.176.99.1",
                  through_cloudfront(GUESSER, key)) == 429


@pytest.mark.parametrize("claimed", [
    {"x-mailpipe-viewer-address": "203.0.113.{number}"},                    # no key
    {"x-mailpipe-viewer-address": "203.0.113.{number}",
     "x-mailpipe-origin-key": "0" * 36},                                    # a wrong key
    {"x-mailpipe-viewer-address": "203.0.113.{number}",
     "x-mailpipe-origin-key": ""},                                          # an empty one
])
def test_a_direct_caller_cannot_choose_the_address_it_is_counted_under(api, claimed):
    # Calling the HttpApi's own address with a new claimed address each time: still one
    # client, its own.
    guesses = [log_in(api, f"user{number}@hamburger.edu", "guess", GUESSER,
                      {name: value.format(number=number) for name, value in claimed.items()})
               for number in range(11)]
    assert guesses == [401] * 10 + [429]


@pytest.mark.parametrize("viewer", ["", "not-an-address", "198.51.100.66, 10.0.0.1"])
def test_a_key_with_no_usable_address_counts_the_connection(api, stack, viewer):
    key = stack.functions["ServeApiFunction"].environment["MAILPIPE_CLOUDFRONT_ORIGIN_KEY"]
    guesses = [log_in(api, f"user{number}@hamburger.edu", "guess", GUESSER,
                      through_cloudfront(viewer, key)) for number in range(11)]
    assert guesses == [401] * 10 + [429]
