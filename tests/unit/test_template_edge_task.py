"""The edge's ECS task, read from template.yaml: SMTP and IMAP are two containers of one
image, each with its own ports, memory limit and health check, so IMAP cannot take mail
reception down (issue 25, item 7)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailpipe.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = load_template(ROOT / "template.yaml")["Resources"]
TASK = RESOURCES["EdgeTaskDefinition"]["Properties"]
CONTAINERS = {container["Name"]: container for container in TASK["ContainerDefinitions"]}
SMTP_PORTS, IMAP_PORTS = {2525, 2587, 8080}, {2143, 2993, 8081}


def _dockerfile_environment() -> dict[str, str]:
    text = (ROOT / "edge" / "Dockerfile").read_text().replace("\\\n", " ")
    [env] = [line for line in text.splitlines() if line.startswith("ENV ")]
    return dict(re.findall(r"(\w+)=(\S+)", env))


def _health_port(container: dict[str, Any]) -> int:
    """The port the container's own health check asks (ECS runs it inside the container)."""
    command = " ".join(container["HealthCheck"]["Command"])
    [port] = re.findall(r"http://127\.0\.0\.1:(\d+)/", command)
    return int(port)


def test_the_task_runs_smtp_and_imap_as_two_containers_of_one_image():
    assert set(CONTAINERS) == {"edge", "imap"}
    smtp, imap = CONTAINERS["edge"], CONTAINERS["imap"]
    assert smtp["Image"] == imap["Image"] == {"Ref": "EdgeImageUri"}
    assert smtp["Command"] == ["python", "-m", "edge", "smtp"]
    assert imap["Command"] == ["python", "-m", "edge", "imap"]
    assert {mapping["ContainerPort"] for mapping in smtp["PortMappings"]} == SMTP_PORTS
    assert {mapping["ContainerPort"] for mapping in imap["PortMappings"]} == IMAP_PORTS


def test_each_container_has_its_own_health_check_on_its_own_port():
    environment = _dockerfile_environment()
    assert _health_port(CONTAINERS["edge"]) == int(environment["MAILPIPE_HEALTH_PORT"]) == 8080
    assert _health_port(CONTAINERS["imap"]) == int(
        environment["MAILPIPE_IMAP_HEALTH_PORT"]) == 8081
    for container in CONTAINERS.values():
        check = container["HealthCheck"]
        assert check["Command"][0] == "CMD"
        assert check["Interval"] * check["Retries"] <= 60, container["Name"]


def test_the_image_defaults_are_the_ports_the_task_maps():
    environment = _dockerfile_environment()
    assert {int(environment[name]) for name in (
        "MAILPIPE_SMTP_PORT", "MAILPIPE_SUBMISSION_PORT", "MAILPIPE_HEALTH_PORT")} == SMTP_PORTS
    assert {int(environment[name]) for name in (
        "MAILPIPE_IMAP_PORT", "MAILPIPE_IMAPS_PORT", "MAILPIPE_IMAP_HEALTH_PORT")} == IMAP_PORTS


def test_memory_is_shared_so_that_imap_can_never_take_smtps_share():
    task_memory = int(TASK["Memory"])
    smtp, imap = CONTAINERS["edge"], CONTAINERS["imap"]
    for container in (smtp, imap):
        assert 0 < container["MemoryReservation"] < container["Memory"] <= task_memory
    # Fargate: the reservations together fit the task.
    assert smtp["MemoryReservation"] + imap["MemoryReservation"] <= task_memory
    # Both at their hard limits still fit: IMAP at its limit is killed (and restarted)
    # before the task runs out, so it never takes SMTP's memory.
    assert imap["Memory"] + smtp["Memory"] <= task_memory
    # The SMTP edge's 128 MiB data budget peaks near 300 MiB (bench/edge_memory.py); one
    # 20 MiB APPEND took the IMAP process to 288 MiB.
    assert smtp["MemoryReservation"] >= 300
    assert imap["Memory"] >= 2 * 288  # room for two such APPENDs at once


def test_imaps_end_never_stops_the_task_and_ecs_starts_it_again():
    assert CONTAINERS["edge"]["Essential"] is True
    imap = CONTAINERS["imap"]
    assert imap["Essential"] is False
    assert imap["RestartPolicy"]["Enabled"] is True
    assert "IgnoredExitCodes" not in imap["RestartPolicy"]  # whatever status it ends with
    # ECS restarts only a container that ran this long; 60 s is its minimum.
    assert imap["RestartPolicy"]["RestartAttemptPeriod"] == 60


def test_imap_gets_what_it_reads_and_the_smtp_edge_keeps_its_own():
    def names(container: dict[str, Any]) -> set[str]:
        return {entry["Name"] for entry in container["Environment"]}

    needed = {"MAILPIPE_BUCKET", "MAILPIPE_TABLE", "MAILPIPE_USER_POOL_ID",
              "MAILPIPE_USER_POOL_CLIENT_ID", "MAILPIPE_DOMAINS", "MAILPIPE_HOSTNAME",
              "MAILPIPE_PROXY_PROTOCOL", "MAILPIPE_PROXY_TRUSTED_NETWORKS"}
    assert needed <= names(CONTAINERS["imap"])
    assert needed <= names(CONTAINERS["edge"])
    imap_environment = {entry["Name"]: entry["Value"]
                        for entry in CONTAINERS["imap"]["Environment"]}
    assert imap_environment["POWERTOOLS_SERVICE_NAME"] == "edge_imap"
    assert not any("IMAP" in name for name in names(CONTAINERS["edge"]))
    tls = {"MAILPIPE_TLS_CERT_PEM", "MAILPIPE_TLS_KEY_PEM"}
    assert {secret["Name"] for secret in CONTAINERS["imap"]["Secrets"]} == tls
    # The DKIM keys: only the SMTP edge signs (submitted mail).
    assert {secret["Name"] for secret in CONTAINERS["edge"]["Secrets"]} == {
        *tls, "MAILPIPE_DKIM_KEYS"}


def test_the_load_balancer_sends_imap_to_the_imap_container_and_checks_its_health():
    service = RESOURCES["EdgeService"]["Properties"]
    mappings = {}
    for entry in service["LoadBalancers"]:
        if "Fn::If" in entry:
            entry = entry["Fn::If"][1]
        mappings[entry["ContainerPort"]] = (entry["ContainerName"],
                                            entry["TargetGroupArn"]["Ref"])
    assert mappings == {
        2525: ("edge", "EdgeMxTargetGroup"), 2587: ("edge", "EdgeSubmissionTargetGroup"),
        2143: ("imap", "EdgeImapTargetGroup"), 2993: ("imap", "EdgeImapsTargetGroup")}
    for port, (container, group) in mappings.items():
        health_port = int(RESOURCES[group]["Properties"]["HealthCheckPort"])
        assert health_port == _health_port(CONTAINERS[container]), (port, group)


@pytest.mark.parametrize("arguments", [[], ["pop3"], ["smtp", "imap"]])
def test_the_edge_entry_point_without_one_known_role_is_a_one_line_usage_error(
        arguments: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "edge", *arguments], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr == "usage: python -m edge {smtp|imap}\n"
    assert result.stdout == ""
