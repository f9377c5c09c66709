"""The local edge's processes (SMTP and IMAP) are configured by the template's ECS task
definition, not by a second list."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from edge.smtp.server import EdgeConfig
from mailpipe import cli
from mailpipe.local.provision import Provisioned, provision
from mailpipe.local.stack import (
    LocalStack,
    StackOptions,
    local_edge_overrides,
    local_imap_overrides,
    template_parameters,
)
from mailpipe.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]


def _template_container_environment(name: str = "edge") -> list[str]:
    task = load_template(ROOT / "template.yaml")["Resources"]["EdgeTaskDefinition"]
    [container] = [container for container in task["Properties"]["ContainerDefinitions"]
                   if container["Name"] == name]
    return [entry["Name"] for entry in container["Environment"]]


def test_edge_environment_is_the_task_definitions_resolved(stack: Provisioned) -> None:
    environment = stack.containers["edge"].environment
    assert sorted(environment) == sorted(_template_container_environment())
    imap = stack.containers["imap"].environment
    assert sorted(imap) == sorted(_template_container_environment("imap"))
    assert imap["MAILPIPE_TABLE"] == stack.outputs["MailboxTableName"]
    assert imap["POWERTOOLS_SERVICE_NAME"] == "edge_imap"
    # References resolved to the resources provisioned in moto, as ECS resolves them.
    assert environment["MAILPIPE_TABLE"] == stack.outputs["MailboxTableName"]
    assert environment["MAILPIPE_BUCKET"] == stack.outputs["MessageBucketName"]
    assert environment["MAILPIPE_USER_POOL_ID"] == stack.outputs["UserPoolId"]
    assert environment["MAILPIPE_DOMAINS"] == "hamburger.edu"
    assert environment["POWERTOOLS_SERVICE_NAME"] == "edge_smtp"
    assert environment["MAILPIPE_DNSBL"] == ""  # no blocklist unless one is named


def test_local_run_replaces_only_what_the_load_balancer_does() -> None:
    """Ports, TLS source and PROXY are about the NLB in front; everything else is the
    template's own, so a variable added there reaches the local edge unchanged."""
    replaced = set(local_edge_overrides(StackOptions())) & set(_template_container_environment())
    assert replaced == {"MAILPIPE_PROXY_PROTOCOL"}
    replaced = set(local_imap_overrides(StackOptions())) & set(
        _template_container_environment("imap"))
    assert replaced == {"MAILPIPE_PROXY_PROTOCOL"}


def test_the_local_smtp_edge_is_not_told_imaps_ports() -> None:
    """Each process gets its own ports: IMAP's are not the SMTP edge's business."""
    options = StackOptions(imap_port=12143, imaps_port=12993)
    assert not any("IMAP" in name for name in local_edge_overrides(options))
    assert local_imap_overrides(options)["MAILPIPE_IMAP_PORT"] == "12143"
    assert local_imap_overrides(options)["MAILPIPE_IMAPS_PORT"] == "12993"


@pytest.mark.parametrize("role", ["smtp", "imap"])
def test_the_local_edge_child_starts_the_edge_as_python_m_edge_does(role: str) -> None:
    """`mailpipe up` runs each edge role through edge_child; the role must start as the
    container's `python -m edge <role>` does, with nothing the image would not say (a
    module run twice warns on stderr, which the stack's log then shows)."""
    environment = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    container = subprocess.run(
        [sys.executable, "-m", "edge", role], env=environment, cwd=ROOT,
        capture_output=True, text=True, timeout=60, check=False)
    local = subprocess.run(
        [sys.executable, "-m", "mailpipe.local.edge_child", role, str(os.getpid())],
        env=environment, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    # Without AWS's settings both stop at the edge's own configuration, the same way.
    assert container.returncode == local.returncode == 1
    assert container.stderr.splitlines()[-1] == local.stderr.splitlines()[-1]
    assert "is not set" in local.stderr.splitlines()[-1]
    assert "Warning" not in local.stderr


def test_up_dnsbl_reaches_the_template_parameter_and_the_smtp_edges_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mailpipe up --dnsbl ZONE` (repeatable) -> DnsblZones -> MAILPIPE_DNSBL of the SMTP
    edge container, resolved as the local runtime resolves it -> the edge's zones."""
    started: list[StackOptions] = []
    monkeypatch.setattr(cli, "run", started.append)  # the options, not a stack
    assert cli.main(["up", "--dnsbl", "bl.test", "--dnsbl", "Zen.Spamhaus.ORG",
                     "--state-dir", str(tmp_path)]) == 0
    [options] = started
    parameters = template_parameters(options)
    assert parameters["DnsblZones"] == "bl.test,zen.spamhaus.org"
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        provisioned = provision(ROOT, "test", parameters,
                                boto3.session.Session(region_name="us-east-1"), None,
                                "us-east-1")
    environment = {**provisioned.containers["edge"].environment,
                   **local_edge_overrides(options)}
    assert environment["MAILPIPE_DNSBL"] == "bl.test,zen.spamhaus.org"
    assert "MAILPIPE_DNSBL" not in provisioned.containers["imap"].environment
    assert EdgeConfig.from_environ(environment, "mx.test").dnsbl_zones == (
        "bl.test", "zen.spamhaus.org")
    assert "blocklists  bl.test, zen.spamhaus.org" in LocalStack(options).banner()


def test_up_refuses_a_dnsbl_that_is_not_a_domain_name(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["up", "--dnsbl", "bl test"])
    assert stopped.value.code == 2
    assert "argument --dnsbl: not a domain name: 'bl test'" in capsys.readouterr().err
