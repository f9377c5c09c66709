"""Shared fixtures: the template's own resources in moto, and the functions' handlers."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import boto3
import pytest
from moto import mock_aws

from mailpipe.local import moto_patches
from mailpipe.local.launcher import free_port  # noqa: F401 (shared by the tests)
from mailpipe.local.provision import Provisioned, provision

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
DOMAIN = "hamburger.edu"


# The longest file: 10,000 messages, 2,000 malformed ones and the fault tests through local
# stacks, about 5 minutes of a run. `make test` runs two workers (pytest-xdist, a file to a
# worker); this file first lets the other worker take everything else meanwhile, instead
# of starting it last.
LONGEST_FIRST = "tests/e2e/test_faults_and_load.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.nodeid.split("::")[0] != LONGEST_FIRST)  # stable


def load_event(name: str) -> dict:
    return copy.deepcopy(json.loads((ROOT / "events" / name).read_text()))


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py under a unique module name (each is `app` in Lambda)."""
    path = ROOT / "functions" / name / "app.py"
    # As in Lambda, the function's own folder is on the path (serve_api's mailbox_api).
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(f"{name}_app", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _reset_adapter_caches() -> None:
    from mailcore import wiring
    from mailcore.adapters.aws import clients

    wiring.aws_adapters.cache_clear()
    for factory in (clients.s3_client, clients.dynamodb_client, clients.cognito_client):
        factory.cache_clear()


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Provisioned:
    """template.yaml's resources in moto (in-process), with the functions' environment set."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
                        "POWERTOOLS_METRICS_NAMESPACE": "mailpipe-test"}.items():
        monkeypatch.setenv(name, value)
    # moto as the local runtime runs it: its patched semantics are tested here too.
    with moto_patches.patched(), mock_aws():
        provisioned = provision(ROOT, "test", {"HostedDomains": DOMAIN},
                                boto3.session.Session(region_name=REGION), region=REGION)
        for name, value in provisioned.functions["FileMessageFunction"].environment.items():
            if name.startswith("MAILPIPE_"):
                monkeypatch.setenv(name, value)
        _reset_adapter_caches()
        yield provisioned
        _reset_adapter_caches()
