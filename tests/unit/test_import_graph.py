"""mailcore's arrows point one way, and each handler's cold start imports only what that
handler needs (issue 25, item 16).

The layers: domain, ports, services and adapters, each importing only those below it;
adapters never import services: only the composition roots (mailcore/wiring.py and
delivery_wiring.py) put adapters and services together.

Each functions/*/app.py is imported in a fresh interpreter, as a new Lambda execution
environment does (its own folder and the mailcore layer on the path), and the mailcore
modules it loaded are compared with what the handler never or only rarely uses: those are
imported when first called, not at every cold start.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections import defaultdict

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
# never files or delivers, logs in (Cognito) only on POST /v1/session, and reads a
# message's Authentication-Results field only when the message is read.
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
    # Junk emptied on a schedule: it lists accounts and removes stored messages, never
    # parses, files, composes, delivers or logs anyone in.
    "expire_junk": {
        "mailcore.parsing",
        "mailcore.services.composing",
        "mailcore.services.filing",
        "mailcore.services.reading",
        "mailcore.services.delivery",
        "mailcore.services.login",
        "mailcore.adapters.aws.sqs_outgoing",
        "mailcore.adapters.smtp_client",
        "mailcore.adapters.dns_next_hop",
        "dkim",
        "aws_lambda_powertools.utilities.batch",
        "aws_lambda_powertools.utilities.data_classes",
    },
    # Custom::DkimKeys: it reads and writes the keys secret, and makes keys (cryptography)
    # only for a domain without any.
    "make_dkim_keys": {
        "mailcore.wiring",
        "mailcore.ports",
        "mailcore.services",
        "mailcore.parsing",
        "mailcore.domain",
        "mailcore.adapters.aws.mailboxes",
        "cryptography.hazmat.primitives.asymmetric.rsa",
        "dkim",
        "aws_lambda_powertools.utilities.batch",
        "aws_lambda_powertools.utilities.data_classes",
    },
    # learn_junk reads messages and their bytes and keeps the filter: it never files,
    # composes, delivers or logs in, and reads its SQS records as dicts.
    "learn_junk": {
        "mailcore.adapters.aws.cognito_directory",
        "mailcore.adapters.aws.dynamodb_throttle",
        "mailcore.adapters.aws.dynamodb_sending_limit",
        "mailcore.adapters.aws.sqs_outgoing",
        "mailcore.adapters.dns_next_hop",
        "mailcore.adapters.smtp_client",
        "mailcore.services.composing",
        "mailcore.services.reading",
        "mailcore.services.filing",
        "mailcore.services.delivery",
        "mailcore.services.bounce",
        "mailcore.services.login",
        "dkim",
        "aws_lambda_powertools.utilities.batch",
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
        "mailcore.authentication.display",  # imported when a message is read
        "dkim",  # on the first message sent (0.23 s of imports, dnspython's resolver)
        "authres",
    },
}


# What each part of mailcore may import of mailcore's other parts (its own always). The
# composition roots, wiring and delivery_wiring, may import anything and nothing imports
# them but the handlers, the edge's entry points and tests.
MAY_IMPORT = {
    "errors": set(),
    "observability": set(),
    "config": {"errors"},
    "domain": {"errors"},
    "parsing": {"domain", "errors"},  # the bounded parse of what the domain reads
    "imap_view": {"domain"},  # what IMAP shows of a message's bytes, made when written
    # SPF, DKIM and DMARC over injected DNS lookups; DKIM signing (issue 28)
    "authentication": {"domain", "errors"},
    # the junk filter's tokens, classifier and verdict order (issue 29): reads the message's
    # text as SEARCH does, and the organisational domain as DMARC does
    "junk": {"domain", "errors", "imap_view", "authentication"},
    "ports": {"domain", "errors", "imap_view", "authentication", "junk"},  # SigningKey, JunkModel
    "s3_keys": {"domain"},  # the bucket's layout, shared by filing and both stores
    "services": {"domain", "errors", "observability", "parsing", "imap_view", "ports",
                 "s3_keys", "authentication", "junk"},
    "adapters": {"domain", "errors", "observability", "parsing", "imap_view", "ports",
                 "config", "s3_keys", "authentication", "junk"},
}
COMPOSITION_ROOTS = {"wiring", "delivery_wiring"}


def _part(module: str) -> str | None:
    """The part of mailcore a module belongs to (mailcore.services.filing: services)."""
    names = module.split(".")
    return names[1] if names[0] == "mailcore" and len(names) > 1 else None


def _mailcore_arrows() -> dict[str, set[str]]:
    """For each part of mailcore, the other parts its modules import (at the top, inside
    functions and under TYPE_CHECKING alike: each is an arrow a reader follows)."""
    arrows: dict[str, set[str]] = defaultdict(set)
    for path in (LAYER / "mailcore").rglob("*.py"):
        module = ".".join(path.relative_to(LAYER).with_suffix("").parts)
        importer = _part(module.removesuffix(".__init__"))
        if importer is None:  # mailcore/__init__.py
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            imported = []
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                # `from mailcore import wiring` imports the part it names.
                imported = [node.module, *(f"{node.module}.{alias.name}"
                                           for alias in node.names)]
            arrows[importer] |= {part for name in imported
                                 if (part := _part(name)) and part != importer}
    return arrows


def test_every_part_of_mailcore_is_placed() -> None:
    assert set(_mailcore_arrows()) <= set(MAY_IMPORT) | COMPOSITION_ROOTS


def test_adapters_never_import_services_or_the_composition_roots() -> None:
    assert _mailcore_arrows()["adapters"].isdisjoint({"services", *COMPOSITION_ROOTS})


@pytest.mark.parametrize("part", sorted(MAY_IMPORT))
def test_each_part_of_mailcore_imports_only_the_parts_below_it(part: str) -> None:
    assert _mailcore_arrows()[part] - MAY_IMPORT[part] == set()


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


# The layer module a handler that has no use for the composition root does load.
LOADS = {"make_dkim_keys": "mailcore.authentication.signing_keys"}


@pytest.mark.parametrize("function", sorted(NOT_IMPORTED))
def test_handler_cold_start_leaves_out_what_it_does_not_use(function: str) -> None:
    loaded = _modules_after_import(function)
    # The import did load the layer: the assertion below is about the right graph.
    assert LOADS.get(function, "mailcore.wiring") in loaded
    assert sorted(NOT_IMPORTED[function] & loaded) == []
