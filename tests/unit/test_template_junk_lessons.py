"""The junk lessons path in template.yaml (issue 29): the API and IMAP queue notices, a
queue with its dead-letter queue and alarm feeds learn_junk, and each role gets what its
part of that needs, no more."""

from __future__ import annotations

from typing import Any

from mailcore import s3_keys
from mailcore.adapters.aws.dynamodb_keys import message_key
from mailcore.domain.ids import new_message_id
from mailpipe.local.template import load_template
from tests.conftest import ROOT
from tests.unit.test_template_policies import (
    BUCKET,
    ROLES,
    TABLE,
    _allows,
    _listed,
    _statements,
    _translated,
)

RESOURCES = load_template(ROOT / "template.yaml")["Resources"]
TRANSLATED = _translated()["Resources"]
QUEUE_ARN = {"Fn::GetAtt": ["JunkLessonsQueue", "Arn"]}
ENVIRONMENT_NAME = "MAILPIPE_JUNK_LESSONS_QUEUE_URL"
MESSAGE_ID = new_message_id()
ITEM_PARTITION = message_key("bob@hamburger.edu", MESSAGE_ID)["pk"]["S"]


def _container_environment(name: str) -> dict[str, Any]:
    [container] = [each for each in RESOURCES["EdgeTaskDefinition"]["Properties"][
        "ContainerDefinitions"] if each["Name"] == name]
    return {entry["Name"]: entry["Value"] for entry in container["Environment"]}


def test_the_queue_keeps_notices_and_gives_up_on_one_into_an_alarmed_dead_letter_queue():
    queue = RESOURCES["JunkLessonsQueue"]["Properties"]
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["JunkLessonsDeadLetterQueue", "Arn"]}
    assert 1 < redrive["maxReceiveCount"] <= 10
    timeout = RESOURCES["LearnJunkFunction"]["Properties"]["Timeout"]
    # AWS's advice for SQS event sources: the visibility timeout six times the function's.
    assert queue["VisibilityTimeout"] >= 6 * timeout
    alarm = RESOURCES["JunkLessonsDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {
        "Fn::GetAtt": ["JunkLessonsDeadLetterQueue", "QueueName"]}}]


def test_learn_junk_reads_the_queue_reporting_each_failed_notice_alone():
    function = RESOURCES["LearnJunkFunction"]["Properties"]
    assert function["CodeUri"] == "functions/learn_junk/"
    [event] = function["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == QUEUE_ARN
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # Within the house's budgets: the global memory, a timeout a batch fits in.
    assert "MemorySize" not in function and function["Timeout"] <= 120
    mappings = [resource["Properties"] for resource in TRANSLATED.values()
                if resource["Type"] == "AWS::Lambda::EventSourceMapping"
                and resource["Properties"]["EventSourceArn"] == QUEUE_ARN]
    assert len(mappings) == 1


def test_the_api_and_imap_are_told_the_queue_and_may_send_to_it_the_smtp_edge_not():
    api = RESOURCES["ServeApiFunction"]["Properties"]["Environment"]["Variables"]
    assert api[ENVIRONMENT_NAME] == {"Ref": "JunkLessonsQueue"}
    assert _container_environment("imap")[ENVIRONMENT_NAME] == {"Ref": "JunkLessonsQueue"}
    assert ENVIRONMENT_NAME not in _container_environment("edge")
    senders = {role for role in ROLES for statement in _statements(ROLES[role])
               if statement.get("Effect") == "Allow"
               and "sqs:SendMessage" in _listed(statement["Action"])
               and QUEUE_ARN in _listed(statement["Resource"])}
    assert senders == {"ServeApiFunctionRole", "EdgeTaskRole"}


def test_the_learner_reads_messages_and_their_bytes_and_changes_no_mailbox_or_bytes():
    role = "LearnJunkFunctionRole"
    for raw_key in (s3_keys.message_key(MESSAGE_ID), s3_keys.appended_key(MESSAGE_ID)):
        assert _allows(role, "s3:GetObject", f"{BUCKET}/{raw_key}"), raw_key
        assert not _allows(role, "s3:PutObject", f"{BUCKET}/{raw_key}"), raw_key
        assert not _allows(role, "s3:DeleteObject", f"{BUCKET}/{raw_key}"), raw_key
    assert not _allows(role, "s3:GetObject", f"{BUCKET}/{s3_keys.draft_key(MESSAGE_ID)}")
    assert _allows(role, "dynamodb:GetItem", TABLE, ITEM_PARTITION)
    # Its filter's transaction and batched reads: item calls, never a Query or a Scan.
    for action in ("dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                   "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"):
        assert _allows(role, action, TABLE, ITEM_PARTITION), action
    for action in ("dynamodb:Query", "dynamodb:Scan", "dynamodb:BatchWriteItem"):
        assert not _allows(role, action, TABLE, ITEM_PARTITION), action
