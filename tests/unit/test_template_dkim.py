"""The DKIM keys in template.yaml, as `sam deploy` expands it: made by the stack unless
given, written only by the keys function, read by the two that sign (API, SMTP edge)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mailpipe.local.template import load_template, translate

ROOT = Path(__file__).resolve().parents[2]
KEYS_SECRET = {"Fn::If": ["MakeDkimKeys", {"Ref": "DkimKeysSecret"},
                          {"Ref": "DkimKeysSecretArn"}]}
TEMPLATE: dict[str, Any] = translate(load_template(ROOT / "template.yaml"), {
    "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
    "AWS::StackName": "dkim-test"}, "us-east-1")
RESOURCES = TEMPLATE["Resources"]


def _secret_statements(role_id: str) -> list[dict[str, Any]]:
    return [statement for policy in RESOURCES[role_id]["Properties"]["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]
            if any(str(action).startswith("secretsmanager:") for action in
                   (statement["Action"] if isinstance(statement["Action"], list)
                    else [statement["Action"]]))]


def test_the_stack_makes_the_keys_secret_and_the_keys_only_when_none_is_given():
    assert TEMPLATE["Conditions"]["MakeDkimKeys"] == {
        "Fn::Equals": [{"Ref": "DkimKeysSecretArn"}, ""]}
    assert TEMPLATE["Parameters"]["DkimKeysSecretArn"]["Default"] == ""
    for logical_id in ("DkimKeysSecret", "DkimKeys", "MakeDkimKeysFunction",
                       "MakeDkimKeysFunctionRole"):
        assert RESOURCES[logical_id]["Condition"] == "MakeDkimKeys", logical_id
    keys = RESOURCES["DkimKeys"]
    assert keys["Type"] == "Custom::DkimKeys"
    assert keys["Properties"]["SecretId"] == {"Ref": "DkimKeysSecret"}
    # A domain added to the stack is an Update of the resource: it gets its keys.
    assert keys["Properties"]["Domains"] == {"Ref": "HostedDomains"}
    assert TEMPLATE["Outputs"]["DkimKeysSecretArn"]["Value"] == KEYS_SECRET


def test_only_the_keys_function_writes_the_keys_and_only_that_secret():
    [statement] = _secret_statements("MakeDkimKeysFunctionRole")
    assert sorted(statement["Action"]) == ["secretsmanager:GetSecretValue",
                                           "secretsmanager:PutSecretValue"]
    assert statement["Resource"] == {"Ref": "DkimKeysSecret"}
    for role_id in ("ServeApiFunctionRole", "EdgeTaskRole", "FileMessageFunctionRole"):
        for other in _secret_statements(role_id):
            assert "secretsmanager:PutSecretValue" not in str(other["Action"]), role_id


def test_the_api_and_the_smtp_edge_read_the_keys_they_sign_with():
    assert [(s["Action"], s["Resource"]) for s in _secret_statements(
        "ServeApiFunctionRole")] == [("secretsmanager:GetSecretValue", KEYS_SECRET)]
    api = RESOURCES["ServeApiFunction"]["Properties"]["Environment"]["Variables"]
    assert api["MAILPIPE_DKIM_SECRET"] == KEYS_SECRET
    # The SMTP edge gets the document in its environment when its task starts, read by
    # the execution role; the task role (the IMAP container's too) cannot read it.
    assert ("secretsmanager:GetSecretValue", KEYS_SECRET) in [
        (s["Action"], s["Resource"]) for s in _secret_statements("EdgeExecutionRole")]
    assert _secret_statements("EdgeTaskRole") == []
    containers = {container["Name"]: container for container in RESOURCES[
        "EdgeTaskDefinition"]["Properties"]["ContainerDefinitions"]}
    assert {"Name": "MAILPIPE_DKIM_KEYS", "ValueFrom": KEYS_SECRET} in containers["edge"][
        "Secrets"]
    assert "MAILPIPE_DKIM_KEYS" not in str(containers["imap"])
    # The task starts after the keys' custom resource has written the keys.
    assert {"Name": "MAILPIPE_DKIM_KEYS_RESOURCE",
            "Value": {"Fn::If": ["MakeDkimKeys", {"Ref": "DkimKeys"}, "given"]}} in containers[
        "edge"]["Environment"]
