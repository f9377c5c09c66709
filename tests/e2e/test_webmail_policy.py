"""`mailpipe up` serves the webmail with the policy template.yaml gives CloudFront, but for
where the message store is (moto here, the stack's bucket in AWS)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from mailpipe.local.launcher import StackProcess, start_stack
from tests.unit.test_template_webmail import BUCKET, directives, template_policy

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    stack = start_stack(["example.test"], {"alice@example.test": "alice-password"})
    yield stack
    stack.stop()


@pytest.mark.parametrize("path", ["/", "/js/api.js"])
def test_the_running_stacks_page_has_the_templates_policy_with_its_own_store(stack, path):
    response = requests.get(f"http://127.0.0.1:{stack.http_port}{path}", timeout=10)
    assert response.status_code == 200
    local = directives(response.headers["content-security-policy"])
    in_aws = template_policy("us-east-1")
    # The store's links point at moto here, and at nothing else: no wildcard, no API host.
    assert local.pop("connect-src") == ["'self'", f"http://127.0.0.1:{stack.aws_port}"]
    assert in_aws.pop("connect-src") == ["'self'", f"https://{BUCKET}.s3.us-east-1.amazonaws.com",
                                         f"https://{BUCKET}.s3.amazonaws.com"]
    assert local == in_aws

