"""The local edge's processes (SMTP and IMAP) are configured by the template's ECS task
definition, not by a second list."""

from __future__ import annotations

from pathlib import Path

from mailpipe.local.provision import Provisioned
from mailpipe.local.stack import StackOptions, local_edge_overrides, local_imap_overrides
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
