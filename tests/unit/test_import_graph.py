"""Each handler's cold start imports only what that handler needs (issue 25, item 16).

Each functions/*/app.py is imported in a fresh interpreter, as a new Lambda execution
environment does (its own folder and the mailcore layer on the path), and the mailcore
modules it loaded are compared with what the handler never or only rarely uses: those are
imported when first called, not at every cold start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

LAYER = ROOT / "layers" / "mailcore" / "python"
_LIST_MODULES = "import json, sys, app; print(json.dumps(sorted(sys.modules)))"

# What each handler must not load at import. deliver_mail never reads a mailbox, parses a
# message for display, logs anyone in or composes; it builds a DSN only when a recipient
# bounces, and walks its SQS records itself: powertools' batch utility loads asyncio and
# every powertools event class (utilities.data_classes), 21 ms of its cold start; of the
# ports it needs only the next hop and the reply (mailcore.domain.next_hop), not the 3 ms
# of protocols.
# file_message never reads for display, composes, delivers or logs in, and reads its SQS
# records and S3 notifications as dicts (powertools' event classes: 12 ms). serve_api
# never files or delivers, and logs in (Cognito) only on POST /v1/session.
NOT_IMPORTED = {
    "deliver_mail": {
        "mailcore.adapters.aws.cognito_directory",
        "mailcore.adapters.aws.mailboxes",
        "mailcore.domain.mailbox",
        "mailcore.adapters.aws.dynamodb_throttle",
        "mailcore.adapters.aws.dynamodb_sending_limit",
        "mailcore.domain.message",
        "mailcore.parsing",
        "mailcore.services.composing",
        "mailcore.services.filing",
        "mailcore.services.reading",
        "mailcore.services.login",
        "mailcore.services.bounce",
        "mailcore.ports",
        "asyncio",
        "aws_lambda_powertools.utilities.batch",
        "aws_lambda_powertools.utilities.data_classes",
    },
    "file_message": {
        "mailcore.adapters.aws.cognito_directory",
        "mailcore.adapters.aws.dynamodb_throttle",
        "mailcore.adapters.aws.dynamodb_sending_limit",
        "mailcore.adapters.dns_next_hop",
        "mailcore.adapters.smtp_client",
        "mailcore.services.composing",
        "mailcore.services.reading",
        "mailcore.services.delivery",
        "mailcore.services.bounce",
        "mailcore.services.login",
        "aws_lambda_powertools.utilities.data_classes",
    },
    "serve_api": {
        "mailcore.adapters.aws.cognito_directory",
        "mailcore.adapters.aws.sqs_outgoing",
        "mailcore.adapters.dns_next_hop",
        "mailcore.adapters.smtp_client",
        "mailcore.services.filing",
        "mailcore.services.delivery",
        "mailcore.services.bounce",
    },
}


def _modules_after_import(function: str) -> set[str]:
    folder = ROOT / "functions" / function
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(LAYER)]),
                   "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "test",
                   "POWERTOOLS_METRICS_NAMESPACE": "test"}
    result = subprocess.run([sys.executable, "-c", _LIST_MODULES], cwd=folder,
                            env=environment, capture_output=True, text=True, check=False,
                            timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_every_handler_is_covered() -> None:
    assert {path.parent.name for path in (ROOT / "functions").glob("*/app.py")} == set(
        NOT_IMPORTED)


@pytest.mark.parametrize("function", sorted(NOT_IMPORTED))
def test_handler_cold_start_leaves_out_what_it_does_not_use(function: str) -> None:
    loaded = _modules_after_import(function)
    # The import did load the layer: the assertion below is about the right graph.
    assert "mailcore.adapters.aws.wiring" in loaded
    assert sorted(NOT_IMPORTED[function] & loaded) == []
