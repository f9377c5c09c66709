"""`mailpipe dns` and `mailpipe suppression` against what they may meet (issue 28 review):
whatever is wrong, one line on stderr and a status, never a traceback."""

from __future__ import annotations

import boto3
import pytest

from mailpipe import cli
from tests.conftest import DOMAIN, REGION


@pytest.fixture
def target(stack, monkeypatch):  # type: ignore[no-untyped-def]
    outputs = {"EdgeHostname": "mx.hamburger.edu", **stack.outputs}
    monkeypatch.setattr(cli, "_target", lambda *_: (
        outputs, lambda service: boto3.client(service, region_name=REGION)))
    return outputs


@pytest.mark.parametrize("secret", ["not json", '{"version": 7}', '{"version": 1, "keys": 3}',
                                    '{"version": 1, "keys": [{"domain": "x"}]}'])
def test_dns_with_an_unreadable_keys_secret_says_so_in_one_line(target, capsys,
                                                                secret: str) -> None:
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=target["DkimKeysSecretArn"], SecretString=secret)
    try:
        status = cli.main(["dns", DOMAIN])
    except Exception as error:
        pytest.fail(f"traceback: {type(error).__name__}: {error}")
    err = capsys.readouterr().err
    assert status != 0 and err.startswith("mailpipe: ") and err.count("\n") == 1, (status, err)


@pytest.mark.parametrize(("command", "missing"), [
    (["dns", DOMAIN], "EdgeHostname"), (["dns", DOMAIN], "UserPoolId"),
    (["suppression", "list"], "MailboxTableName"),
])
def test_a_stack_deployed_before_these_outputs_is_named_in_one_line(
        stack, monkeypatch, capsys, command: list[str], missing: str) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a stack deployed by an older template (no EdgeHostname output, say)
    outputs = {key: value for key, value in stack.outputs.items() if key != missing}
    monkeypatch.setattr(cli, "_target", lambda *_: (
        outputs, lambda service: boto3.client(service, region_name=REGION)))
    try:
        status = cli.main(command)
    except Exception as error:
        pytest.fail(f"traceback: {type(error).__name__}: {error}")
    err = capsys.readouterr().err
    assert status != 0 and err.startswith("mailpipe: ") and err.count("\n") == 1, (status, err)
