"""Least privilege, read from template.yaml as `sam deploy` would expand it.

The Internet-facing API once had S3CrudPolicy on the whole bucket: it could delete object
versions and set lifecycle rules, so one bug or stolen role could destroy all mail. Each
role now names its actions, and S3 writes name their key prefixes.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest

from mailcore import s3_keys
from mailcore.adapters.aws.dynamodb_keys import (
    ACCOUNT_PREFIX,
    LOGIN_FROM_PREFIX,
    LOGIN_PREFIX,
    RAW_PREFIX,
    SENT_PREFIX,
    SUPPRESSED_PREFIX,
    account_pk,
    imap_view_key,
    job_pk,
    junk_pk,
    login_key,
    suppressed_pk,
)
from mailcore.domain.ids import new_message_id
from mailpipe.local.template import load_template, translate

ROOT = Path(__file__).resolve().parents[2]
# AWS managed policies the roles may carry: execution basics only, no data access.
ALLOWED_MANAGED = {
    "AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess", "AWSLambdaSQSQueueExecutionRole",
    "AWSLambdaVPCAccessExecutionRole", "AmazonECSTaskExecutionRolePolicy",
}
# S3 actions that change objects; each must be scoped to a key prefix.
S3_OBJECT_WRITES = ("s3:PutObject", "s3:DeleteObject", "s3:RestoreObject", "s3:PutObjectAcl",
                    "s3:PutObjectTagging", "s3:AbortMultipartUpload")
# Never for a function or task: they destroy history or change the bucket's rules.
S3_FORBIDDEN = ("s3:DeleteObjectVersion", "s3:PutLifecycleConfiguration", "s3:PutBucket*",
                "s3:DeleteBucket*", "s3:PutObjectVersion*", "s3:PutReplicationConfiguration")


def _translated() -> dict[str, Any]:
    return translate(load_template(ROOT / "template.yaml"), {
        "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
        "AWS::StackName": "policy-test"}, "us-east-1")


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in role["Properties"].get("Policies", []):
        if "Fn::If" in policy:  # a conditional policy: both branches count
            policy = policy["Fn::If"][1]
        for statement in policy["PolicyDocument"]["Statement"]:
            found.append(statement)
    return found


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resource_text(resource: Any) -> str:
    return json.dumps(resource, sort_keys=True)


ROLES = {logical_id: resource for logical_id, resource in _translated()["Resources"].items()
         if resource["Type"] == "AWS::IAM::Role"}


def test_every_function_and_the_edge_has_a_role_checked_here():
    assert {"FileMessageFunctionRole", "DeliverMailFunctionRole", "ServeApiFunctionRole",
            "ExpireJunkFunctionRole", "EdgeTaskRole", "EdgeExecutionRole"} <= set(ROLES)


@pytest.mark.parametrize("role_id", sorted(ROLES))
def test_no_role_has_a_wildcard_action(role_id):
    for statement in _statements(ROLES[role_id]):
        for action in _listed(statement["Action"]):
            assert "*" not in action, f"{role_id}: {action}"


@pytest.mark.parametrize("role_id", sorted(ROLES))
def test_s3_writes_name_a_key_prefix_and_nothing_destroys_history(role_id):
    for statement in _statements(ROLES[role_id]):
        actions = _listed(statement["Action"])
        for action in actions:
            assert not any(fnmatch.fnmatch(action, pattern) for pattern in S3_FORBIDDEN), (
                f"{role_id}: {action}")
        if not any(action in S3_OBJECT_WRITES for action in actions):
            continue
        for resource in _listed(statement["Resource"]):
            text = _resource_text(resource)
            # "${MessageBucket.Arn}/<prefix>/*", never the bucket or all of its keys.
            assert '"${MessageBucket.Arn}/' in text, f"{role_id}: {text}"
            assert '"${MessageBucket.Arn}/*"' not in text, f"{role_id}: {text}"


@pytest.mark.parametrize("role_id", sorted(ROLES))
def test_only_execution_managed_policies(role_id):
    for arn in ROLES[role_id]["Properties"].get("ManagedPolicyArns", []):
        name = _resource_text(arn).rsplit("/", 1)[-1].strip('"}')
        assert name in ALLOWED_MANAGED, f"{role_id}: {arn}"


def test_the_api_cannot_delete_object_versions_or_touch_bucket_settings():
    actions = {action for statement in _statements(ROLES["ServeApiFunctionRole"])
               for action in _listed(statement["Action"])}
    assert {action for action in actions if action.startswith("s3:")} == {
        "s3:GetObject", "s3:PutObject", "s3:DeleteObject"}


def test_the_edge_touches_only_counters_mailboxes_and_references_in_the_table():
    statements = [statement for statement in _statements(ROLES["EdgeTaskRole"])
                  if any(action.startswith("dynamodb:") for action in
                         _listed(statement["Action"]))]
    on_table = [statement for statement in statements
                if statement["Resource"] == {"Fn::GetAtt": ["MailboxTable", "Arn"]}]
    # SMTP: the login and sending counters. IMAP: an account's items and raw references.
    assert sorted(tuple(statement["Condition"]["ForAllValues:StringLike"][
        "dynamodb:LeadingKeys"]) for statement in on_table) == [
        (f"{ACCOUNT_PREFIX}*", f"{RAW_PREFIX}*"),
        (f"{SENT_PREFIX}*", f"{LOGIN_PREFIX}*", f"{LOGIN_FROM_PREFIX}*"),
        (f"{SUPPRESSED_PREFIX}*",)]
    assert all("dynamodb:Scan" not in _listed(statement["Action"]) for statement in statements)
    [index] = [statement for statement in statements if statement not in on_table]
    assert _listed(index["Action"]) == ["dynamodb:Query"]
    assert index["Resource"] == {"Fn::Sub": "${MailboxTable.Arn}/index/by_uid"}


# ---- what each role must be allowed: the IMAP views beside the messages ---------------------
BUCKET = "arn:aws:s3:::message-bucket"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/mailboxes"


def _arn(resource: Any) -> str:
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        return str(resource["Fn::Sub"]).replace("${MessageBucket.Arn}", BUCKET).replace(
            "${MailboxTable.Arn}", TABLE)
    if resource == {"Fn::GetAtt": ["MessageBucket", "Arn"]}:
        return BUCKET
    if resource == {"Fn::GetAtt": ["MailboxTable", "Arn"]}:
        return TABLE
    return _resource_text(resource)


def _allows(role_id: str, action: str, arn: str, leading_key: str | None = None) -> bool:
    """Whether one of the role's Allow statements grants `action` on `arn` (IAM's wildcards:
    `*` matches across slashes), with its LeadingKeys condition, if any, admitting the
    item's partition key."""
    for statement in _statements(ROLES[role_id]):
        if statement.get("Effect") != "Allow":
            continue
        if not any(fnmatch.fnmatchcase(action, each) for each in _listed(statement["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(arn, _arn(each))
                   for each in _listed(statement["Resource"])):
            continue
        condition = statement.get("Condition")
        if condition is None:
            return True
        patterns = condition.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
        if set(condition) == {"ForAllValues:StringLike"} and patterns and leading_key and any(
                fnmatch.fnmatchcase(leading_key, pattern) for pattern in patterns):
            return True
    return False


def _view_object(raw_key: str) -> str:
    return f"{BUCKET}/{s3_keys.imap_view_object_key(raw_key)}"


MESSAGE_ID = new_message_id()
ACCEPTED, DRAFT, APPENDED = (s3_keys.message_key(MESSAGE_ID), s3_keys.draft_key(MESSAGE_ID),
                             s3_keys.appended_key(MESSAGE_ID))
VIEW_PARTITION = imap_view_key("bob@hamburger.edu", MESSAGE_ID)["pk"]["S"]
# Who writes views, of which bytes: filing (accepted mail), the API (its drafts), IMAP
# (APPEND; and of any message on its first FETCH).
VIEW_WRITERS = {"FileMessageFunctionRole": (ACCEPTED,), "ServeApiFunctionRole": (DRAFT,),
                "EdgeTaskRole": (ACCEPTED, DRAFT, APPENDED)}
# Who deletes stored bytes, and with them the view object beside them (delete_message).
BYTES_DELETERS = {"DeliverMailFunctionRole": (ACCEPTED,),
                  "ServeApiFunctionRole": (ACCEPTED, DRAFT, APPENDED),
                  "ExpireJunkFunctionRole": (ACCEPTED, DRAFT, APPENDED),
                  "EdgeTaskRole": (ACCEPTED, DRAFT, APPENDED)}


def test_the_evaluation_here_refuses_what_no_statement_grants():
    assert not _allows("FileMessageFunctionRole", "s3:DeleteObject", _view_object(ACCEPTED))
    assert not _allows("FileMessageFunctionRole", "s3:PutObject", f"{BUCKET}/{ACCEPTED}")
    assert not _allows("EdgeTaskRole", "dynamodb:BatchWriteItem", TABLE, job_pk(MESSAGE_ID))
    assert _allows("EdgeTaskRole", "dynamodb:GetItem", TABLE,
                   login_key("bob@hamburger.edu")["pk"]["S"])


@pytest.mark.parametrize("role_id", sorted(VIEW_WRITERS))
def test_each_writer_of_imap_views_may_put_their_items_and_objects(role_id):
    assert _allows(role_id, "dynamodb:BatchWriteItem", TABLE, VIEW_PARTITION)
    for raw_key in VIEW_WRITERS[role_id]:
        assert _allows(role_id, "s3:PutObject", _view_object(raw_key)), raw_key


def test_imap_reads_the_views_of_any_stored_message():
    assert _allows("EdgeTaskRole", "dynamodb:BatchGetItem", TABLE, VIEW_PARTITION)
    for raw_key in (ACCEPTED, DRAFT, APPENDED):
        assert _allows("EdgeTaskRole", "s3:GetObject", _view_object(raw_key)), raw_key


@pytest.mark.parametrize("role_id", sorted(BYTES_DELETERS))
def test_whoever_deletes_a_message_s_bytes_may_delete_the_view_beside_them(role_id):
    # DeleteObjects refuses a key it may not delete quietly (an error in its answer).
    for raw_key in BYTES_DELETERS[role_id]:
        assert _allows(role_id, "s3:DeleteObject", f"{BUCKET}/{raw_key}"), raw_key
        assert _allows(role_id, "s3:DeleteObject", _view_object(raw_key)), raw_key


def test_deliveries_add_to_suppression_lists_the_api_edits_them_the_edge_only_reads():
    """What each role needs for the suppression lists (services.suppression), no more."""
    lists = suppressed_pk("crepes.fr")
    assert _allows("DeliverMailFunctionRole", "dynamodb:PutItem", TABLE, lists)
    for action in ("dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:PutItem",
                   "dynamodb:DeleteItem"):
        assert _allows("ServeApiFunctionRole", action, TABLE, lists), action
    for action in ("dynamodb:GetItem", "dynamodb:BatchGetItem"):
        assert _allows("EdgeTaskRole", action, TABLE, lists), action
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"):
        assert not _allows("EdgeTaskRole", action, TABLE, lists), action


def test_junk_expiry_lists_accounts_reads_junk_oldest_first_and_removes_without_scanning():
    role = "ExpireJunkFunctionRole"
    assert [statement["Resource"] for statement in _statements(ROLES[role])
            if "cognito-idp:ListUsers" in _listed(statement["Action"])] == [
        {"Fn::GetAtt": ["UserPool", "Arn"]}]
    assert _allows(role, "dynamodb:Query", f"{TABLE}/index/by_folder")
    for action in ("dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"):
        assert _allows(role, action, TABLE, VIEW_PARTITION), action
    for action in ("dynamodb:Scan", "cognito-idp:AdminGetUser", "s3:GetObject",
                   "s3:PutObject"):
        assert not any(_allows(role, action, arn) for arn in (TABLE, f"{BUCKET}/{ACCEPTED}")), (
            action)
    # Each account's junk_days: its filter's settings (JUNK#<account>, STATE).
    assert _allows(role, "dynamodb:GetItem", TABLE, junk_pk("bob@hamburger.edu"))


TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem",
                 "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem",
                 "dynamodb:Query", "dynamodb:BatchWriteItem")


def test_filing_reads_the_junk_filter_the_api_keeps_its_settings_the_edge_never_touches_it():
    """Issue 29: the JUNK#<account> partition. Filing reads each recipient's state in one
    batch and the model, and records whom sent mail went to; the API reads and saves the
    settings; the edge's roles reach no item of it (moves over IMAP only notify)."""
    bob = "bob@hamburger.edu"
    state = junk_pk(bob)  # every item of the filter: STATE, MODEL, SENDER#, WROTE#, LESSON#
    for action in ("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:BatchWriteItem"):
        assert _allows("FileMessageFunctionRole", action, TABLE, state), action
    # Filing's batched read is the junk filter's alone.
    assert not _allows("FileMessageFunctionRole", "dynamodb:BatchGetItem", TABLE,
                       account_pk(bob))
    for action in ("dynamodb:GetItem", "dynamodb:UpdateItem"):
        assert _allows("ServeApiFunctionRole", action, TABLE, state), action
    for role_id in ("EdgeTaskRole", "EdgeExecutionRole"):
        for action in TABLE_ACTIONS:
            assert not _allows(role_id, action, TABLE, state), (role_id, action)
