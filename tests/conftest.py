"""Shared fixtures: the template's own resources in moto, and the functions' handlers."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import boto3
import pytest
import requests
from hypothesis import settings
from moto import mock_aws

from mailpipe.local.launcher import free_port
from mailpipe.local.provision import Provisioned, provision

ROOT = Path(__file__).resolve().parents[1]

# Property tests draw the same examples in every run (CI's and a developer's): a run fails
# for a change, never for the draw. Exploring further is `--hypothesis-profile explore`
# (random draws; a failing example is kept in .hypothesis/ and tried first next time).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")
REGION = "us-east-1"
DOMAIN = "hamburger.edu"


# The longest file: 500 messages, 2,000 malformed ones and the fault tests through local
# stacks, about 5 minutes of a run. `make test` runs two workers (pytest-xdist, a file to a
# worker); this file first lets the other worker take everything else meanwhile, instead
# of starting it last.
LONGEST_FIRST = "tests/e2e/test_faults_and_load.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.nodeid.split("::")[0] != LONGEST_FIRST)  # stable


@pytest.fixture(scope="session", autouse=True)
def private_dns() -> Iterator[str]:
    """No test asks the Internet's DNS: every stack a test starts (`mailpipe up` takes
    MAILPIPE_DNS as its --dns) and every resolver built from the environment asks a
    private dnsmasq that knows no name, unless the test gives a DNS server of its own."""
    from tests.dns_support import Dnsmasq

    with Dnsmasq() as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAILPIPE_DNS", server.address)
        yield server.address


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


@contextlib.contextmanager
def _served_moto() -> Iterator[str]:
    """moto's server as the local runtime serves it, in this process; its endpoint. Its
    state is moto's global state, reset when it stops."""
    from mailpipe.local.metering import Meter, MeteredMotoServer

    port = free_port()
    server = MeteredMotoServer(Meter(), "127.0.0.1", port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        yield endpoint
    finally:
        requests.post(f"{endpoint}/moto-api/reset", timeout=30)
        server.stop()


@pytest.fixture
def stack(request: pytest.FixtureRequest,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Provisioned]:
    """template.yaml's resources in moto, with the functions' environment set: moto in this
    process, or for a test marked `concurrent` (it calls AWS from many threads at once) moto's
    server as the local runtime serves it, whose requests are atomic as AWS's are
    (mailpipe/local/atomic_requests.py)."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
                        "POWERTOOLS_METRICS_NAMESPACE": "mailpipe-test"}.items():
        monkeypatch.setenv(name, value)
    with contextlib.ExitStack() as moto:
        endpoint = None
        if request.node.get_closest_marker("concurrent"):
            endpoint = moto.enter_context(_served_moto())
            monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        else:
            moto.enter_context(mock_aws())
        provisioned = provision(ROOT, "test", {"HostedDomains": DOMAIN},
                                boto3.session.Session(region_name=REGION), endpoint, REGION)
        for name, value in provisioned.functions["FileMessageFunction"].environment.items():
            if name.startswith("MAILPIPE_"):
                monkeypatch.setenv(name, value)
        _reset_adapter_caches()
        yield provisioned
        _reset_adapter_caches()
