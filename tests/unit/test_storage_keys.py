"""Each storage layout has one owner: mailcore/s3_keys.py spells the message bucket's keys,
mailcore/adapters/aws/dynamodb_keys.py the mailbox table's. template.yaml cannot import
them, so its notification filter, lifecycle rules, IAM resources and LeadingKeys conditions
are read here and checked against them; and the code, the benches and the tests are read
for any other place that spells a prefix (a string literal or a piece of an f-string).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailcore import s3_keys
from mailcore.adapters.aws import dynamodb_keys
from mailcore.domain.ids import new_message_id
from mailpipe.local.template import load_template, translate

ROOT = Path(__file__).resolve().parents[2]
OWNERS = {ROOT / "layers/mailcore/python/mailcore/s3_keys.py",
          ROOT / "layers/mailcore/python/mailcore/adapters/aws/dynamodb_keys.py"}
SCANNED = ("layers", "edge", "functions", "mailpipe", "bench", "tests")
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
BUCKET_ARN = "${MessageBucket.Arn}/"
TABLE_ARN = "${MailboxTable.Arn}/index/"


# ---- template.yaml against the modules ----------------------------------------------------
def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for each in value.values():
            yield from _walk(each)
    elif isinstance(value, list):
        for each in value:
            yield from _walk(each)


def _role_policies() -> list[Any]:
    translated = translate(load_template(ROOT / "template.yaml"), {
        "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
        "AWS::StackName": "keys-test"}, "us-east-1")["Resources"]
    return [resource["Properties"].get("Policies", []) for resource in translated.values()
            if resource["Type"] == "AWS::IAM::Role"]


POLICIES = _role_policies()


def test_only_accepted_messages_are_notified_for_filing():
    bucket = RESOURCES["MessageBucket"]["Properties"]
    [notification] = bucket["NotificationConfiguration"]["QueueConfigurations"]
    rules = {rule["Name"]: rule["Value"] for rule in notification["Filter"]["S3Key"]["Rules"]}
    assert rules == {"prefix": s3_keys.FILED_PREFIX, "suffix": s3_keys.FILED_SUFFIX}

    def notified(key: str) -> bool:
        return key.startswith(rules["prefix"]) and key.endswith(rules["suffix"])

    message_id = new_message_id()
    accepted = s3_keys.message_key(message_id)
    assert notified(accepted) and s3_keys.message_id_of_key(accepted) == message_id
    for key in (s3_keys.envelope_key(message_id), s3_keys.draft_key(message_id),
                s3_keys.appended_key(message_id), s3_keys.part_key(message_id, 1),
                s3_keys.upload_key("bob@hamburger.edu", message_id)):
        assert not notified(key) and s3_keys.message_id_of_key(key) is None, key
    for key in (accepted, s3_keys.envelope_key(message_id)):
        assert key.startswith(s3_keys.accepted_objects_prefix(message_id)), key


def test_every_key_the_module_builds_is_under_one_of_its_prefixes():
    message_id = new_message_id()
    keys = [s3_keys.message_key(message_id), s3_keys.envelope_key(message_id),
            s3_keys.draft_key(message_id), s3_keys.appended_key(message_id),
            s3_keys.part_key(message_id, 3), s3_keys.upload_key("bob@hamburger.edu", message_id)]
    assert sorted(prefix for key in keys for prefix in s3_keys.PREFIXES
                  if key.startswith(prefix)) == sorted(
        [s3_keys.MESSAGES_PREFIX] * 2 + [s3_keys.DRAFTS_PREFIX, s3_keys.APPENDED_PREFIX,
                                         s3_keys.PARTS_PREFIX, s3_keys.UPLOADS_PREFIX])
    items = [dynamodb_keys.folder_key("bob", "f"), dynamodb_keys.message_key("bob", message_id),
             dynamodb_keys.folder_name_key("bob", "n"), dynamodb_keys.change_key("bob", "f", 1),
             dynamodb_keys.raw_references_key("k"), dynamodb_keys.job_release_key("k", "d"),
             dynamodb_keys.job_key(message_id, "d"), dynamodb_keys.sent_key("bob", 3600),
             dynamodb_keys.login_key("bob"), dynamodb_keys.login_from_key("192.0.2.1"),
             dynamodb_keys.imap_view_key("bob", message_id),
             dynamodb_keys.mta_sts_key("hamburger.edu"),
             dynamodb_keys.suppressed_key("crepes.fr", "gone@hamburger.edu"),
             dynamodb_keys.junk_state_key("bob"), dynamodb_keys.junk_model_key("bob"),
             dynamodb_keys.junk_sender_key("bob", "crepes.fr"),
             dynamodb_keys.junk_wrote_key("bob", "alice@crepes.fr"),
             dynamodb_keys.junk_lesson_key("bob", message_id)]
    for item in items:
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        assert any(pk.startswith(prefix) for prefix in dynamodb_keys.PARTITION_PREFIXES), pk
        assert sk in dynamodb_keys.SORT_KEYS or any(
            sk.startswith(prefix) for prefix in
            (*dynamodb_keys.SORT_PREFIXES, dynamodb_keys.JOB_PREFIX)), sk


def test_the_lifecycle_rules_expire_what_the_module_says_expires():
    rules = RESOURCES["MessageBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = sorted(rule["Prefix"] for rule in rules if "Prefix" in rule)
    assert expiring == sorted(s3_keys.EXPIRING_PREFIXES)
    assert set(s3_keys.EXPIRING_PREFIXES) < set(s3_keys.PREFIXES)


def test_every_s3_resource_of_a_role_is_a_prefix_of_the_module():
    named = set()
    for policies in POLICIES:
        for node in _walk(policies):
            if isinstance(node, dict) and "Fn::Sub" in node and isinstance(node["Fn::Sub"], str):
                text = node["Fn::Sub"]
                if text.startswith(BUCKET_ARN):
                    # "<prefix>*", or "<prefix>*/imap-view": the IMAP views beside the bytes.
                    prefix = text.removeprefix(BUCKET_ARN).removesuffix(
                        s3_keys.IMAP_VIEW_SUFFIX)
                    assert prefix.endswith("/*"), text
                    named.add(prefix.removesuffix("*"))
    assert named and named <= set(s3_keys.PREFIXES), sorted(named - set(s3_keys.PREFIXES))


def test_an_imap_view_object_is_beside_the_bytes_of_each_kind_of_stored_message():
    """Under the bytes' own prefix (so the roles' resources for view objects name that
    prefix and the module's suffix, and the message's deletion finds it)."""
    message_id = new_message_id()
    for raw_key in (s3_keys.message_key(message_id), s3_keys.draft_key(message_id),
                    s3_keys.appended_key(message_id)):
        view_key = s3_keys.imap_view_object_key(raw_key)
        prefix = raw_key.removesuffix(s3_keys.MESSAGE_SUFFIX)
        assert view_key == prefix + s3_keys.IMAP_VIEW_SUFFIX
        assert s3_keys.message_id_of_key(view_key) is None  # never filed
    item = dynamodb_keys.imap_view_key("bob@hamburger.edu", message_id)
    assert item["pk"]["S"] == dynamodb_keys.account_pk("bob@hamburger.edu")
    assert item["sk"]["S"].startswith(dynamodb_keys.VIEW_PREFIX)
    assert dynamodb_keys.message_id_of_view_key(item["sk"]["S"]) == message_id


def test_every_leading_keys_condition_names_partitions_of_the_module():
    conditions = [node["dynamodb:LeadingKeys"] for policies in POLICIES
                  for node in _walk(policies)
                  if isinstance(node, dict) and "dynamodb:LeadingKeys" in node]
    # The edge's role: SMTP's counters, IMAP's account items and references; SMTP's reads
    # of the suppression lists. Filing's batched read of the junk filter.
    groups = (dynamodb_keys.EDGE_SMTP_PARTITIONS, dynamodb_keys.EDGE_IMAP_PARTITIONS,
              dynamodb_keys.EDGE_SMTP_READ_PARTITIONS)
    junk = tuple(f"{prefix}*" for prefix in dynamodb_keys.JUNK_FILTER_PARTITIONS)
    assert junk in [tuple(each) for each in conditions]
    assert sorted(tuple(each) for each in conditions if tuple(each) != junk) == sorted(
        tuple(f"{prefix}*" for prefix in partitions) for partitions in groups)
    assert {prefix for group in (*groups, dynamodb_keys.JUNK_FILTER_PARTITIONS)
            for prefix in group} <= set(dynamodb_keys.PARTITION_PREFIXES)
    # The edge never needs the junk filter (IMAP's moves only notify the learner).
    assert not set(dynamodb_keys.JUNK_FILTER_PARTITIONS) & {
        prefix for group in groups for prefix in group}


def test_the_table_s_keys_and_indexes_are_the_module_s():
    table = RESOURCES["MailboxTable"]["Properties"]
    assert tuple(key["AttributeName"] for key in table["KeySchema"]) == dynamodb_keys.TABLE_KEYS
    indexes = {index["IndexName"]: tuple(key["AttributeName"] for key in index["KeySchema"])
               for index in table["GlobalSecondaryIndexes"]}
    assert indexes[dynamodb_keys.FOLDER_INDEX] == dynamodb_keys.INDEX_KEYS[2:]
    assert set(indexes) == {dynamodb_keys.FOLDER_INDEX, dynamodb_keys.UID_INDEX}
    named = {text.removeprefix(TABLE_ARN) for policies in POLICIES for node in _walk(policies)
             if isinstance(node, dict) and isinstance(text := node.get("Fn::Sub"), str)
             and text.startswith(TABLE_ARN)}
    assert named and named <= set(indexes), named


# ---- nobody else spells them ---------------------------------------------------------------
def _spelling_patterns() -> list[re.Pattern[str]]:
    # Not preceded by a word, a slash or a dot: "/v1/messages/{id}" is an API path, and
    # prose ("20 messages/s") lives in docstrings and comments, which are not read.
    s3 = [re.compile(r"(?<![\w/.-])" + re.escape(prefix)) for prefix in s3_keys.PREFIXES]
    s3 += [re.compile(re.escape(suffix) + r"(?!\w)")
           for suffix in (s3_keys.MESSAGE_SUFFIX, s3_keys.ENVELOPE_SUFFIX,
                          s3_keys.IMAP_VIEW_SUFFIX)]
    table = [re.compile(r"(?<!\w)" + re.escape(prefix)) for prefix in
             dynamodb_keys.PARTITION_PREFIXES + dynamodb_keys.SORT_PREFIXES]
    table += [re.compile(r"^" + re.escape(key) + r"$") for key in dynamodb_keys.SORT_KEYS]
    return s3 + table


PATTERNS = _spelling_patterns()


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def spellings(path: Path, root: Path = ROOT) -> list[str]:
    """Each string literal of `path` (f-string pieces included) that spells a key prefix."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = _docstrings(tree)
    found: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in skipped:
            continue
        if isinstance(node.value, bytes):
            text = node.value.decode("latin-1")
        elif isinstance(node.value, str):
            text = node.value
        else:
            continue
        if any(pattern.search(text) for pattern in PATTERNS):
            found.append((node.lineno, node.col_offset, text))
    return [f"{path.relative_to(root)}:{line}: {text!r}" for line, _, text in sorted(found)]


def _python_files() -> Iterator[Path]:
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if not any(part.startswith(".") or part == "node_modules" for part in path.parts):
                yield path


def test_no_key_prefix_is_spelled_outside_its_owner_module():
    found = [place for path in _python_files() if path not in OWNERS
             for place in spellings(path)]
    assert found == [], "key prefixes spelled outside their owner module:\n" + "\n".join(found)


def test_the_search_finds_each_kind_of_spelling(tmp_path):
    # Written from the modules' constants, so this file spells nothing itself.
    account = dynamodb_keys.ACCOUNT_PREFIX
    planted = tmp_path / "planted.py"
    planted.write_text("\n".join([
        f'"""A docstring may say {s3_keys.MESSAGES_PREFIX}<id> and {account}<address>."""',
        f'key = f"{s3_keys.DRAFTS_PREFIX}{{draft}}{s3_keys.MESSAGE_SUFFIX}"',
        f'pk = {{"S": "{account}" + address}}',
        f'sk = "{dynamodb_keys.REFERENCES_SORT_KEY}"',
        f'line = b"PUT {s3_keys.UPLOADS_PREFIX}x"',
        'path = f"/v1/messages/{message_id}"',
    ]) + "\n")
    found = spellings(planted, tmp_path)
    assert [place.split(":")[:2] for place in found] == [
        ["planted.py", line] for line in ("2", "2", "3", "4", "5")]


@pytest.mark.parametrize("path", sorted(OWNERS), ids=lambda path: path.name)
def test_the_owner_modules_do_spell_them(path):
    assert spellings(path)
