"""Who can read the DKIM private keys (issue 28 review): the processes that sign (the API,
the submission port), never one that only serves IMAP. A task's containers share its task
role, so a container that does not sign must run under a task whose role cannot read them."""

from __future__ import annotations

from typing import Any

from tests.unit.test_template_policies import _statements, _translated


def _reads_dkim_keys(role: dict[str, Any]) -> bool:
    for statement in _statements(role):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [
            statement["Action"]]
        if "secretsmanager:GetSecretValue" in actions and "DkimKeys" in str(
                statement["Resource"]):
            return True
    return False


def test_no_task_running_the_imap_server_can_read_the_dkim_keys() -> None:
    resources = _translated()["Resources"]
    for name, task in resources.items():
        if task["Type"] != "AWS::ECS::TaskDefinition":
            continue
        commands = [container.get("Command", []) for container in
                    task["Properties"]["ContainerDefinitions"]]
        if not any(command[-1:] == ["imap"] for command in commands):
            continue
        role = task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
        assert not _reads_dkim_keys(resources[role]), (
            f"{name} runs the IMAP server under {role}, which can read the DKIM keys")
