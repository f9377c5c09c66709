"""Installs are reproducible: every environment and every artefact that ships installs from
a lock file with hashes (requirements/lock.py lists them), each lock follows its input, and
each is made for the Python and platform that installs it (template.yaml, edge/Dockerfile)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mailpipe.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
LOCK_TOOL = ROOT / "requirements" / "lock.py"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.MULTILINE)


def _lock_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock_tool", LOCK_TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


LOCKS = _lock_tool().LOCKS


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(root / "requirements" / "lock.py"), "--check"],
                          capture_output=True, text=True, timeout=60)


def _pins(path: Path) -> dict[str, str]:
    return {name.lower().replace("_", "-"): version
            for name, version in _PIN.findall(path.read_text())}


def test_every_lock_follows_its_input():
    result = _check(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def copied_inputs(tmp_path: Path) -> Path:
    """The lock tool, every lock and every input, laid out as in the repository."""
    for lock in LOCKS:
        for relative in [lock.output, *(path.relative_to(ROOT) for path in lock.inputs())]:
            (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / relative, tmp_path / relative)
    shutil.copy(LOCK_TOOL, tmp_path / "requirements" / "lock.py")
    assert _check(tmp_path).returncode == 0
    return tmp_path


def test_a_changed_requirement_makes_every_lock_that_includes_it_stale(copied_inputs: Path):
    layer_input = copied_inputs / "layers" / "mailcore" / "requirements.in"
    layer_input.write_text(layer_input.read_text() + "pydantic>=2\n")

    result = _check(copied_inputs)

    assert result.returncode == 1
    stale = {line.split()[0] for line in result.stdout.splitlines()}
    # The edge's input includes the layer's: its lock is stale too.
    assert stale == {"layers/mailcore/requirements-python3.11.txt",
                     "layers/mailcore/requirements-python3.12.txt",
                     "layers/mailcore/requirements-python3.13.txt",
                     "edge/requirements.txt"}


def test_the_development_lock_follows_the_dependencies_of_pyproject_only(copied_inputs: Path):
    pyproject = copied_inputs / "pyproject.toml"
    original = pyproject.read_text()
    pyproject.write_text(original.replace("line-length = 100", "line-length = 99"))
    assert _check(copied_inputs).returncode == 0

    pyproject.write_text(original.replace('"pytest>=8",', '"pytest>=9",'))
    result = _check(copied_inputs)
    assert result.returncode == 1
    assert result.stdout.split()[0] == "requirements/dev.txt"
    assert len(result.stdout.splitlines()) == 1


def test_every_pin_in_every_lock_carries_its_hashes():
    for lock in LOCKS:
        text = (ROOT / lock.output).read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 3)[3])
        for entry in entries:
            assert _PIN.match(entry), (lock.output, entry[:80])
            assert "--hash=sha256:" in entry, (lock.output, entry[:80])


def test_each_lambda_runtime_and_the_edge_image_have_a_lock_for_their_python_on_arm64():
    template = load_template(ROOT / "template.yaml")
    runtimes = template["Parameters"]["PythonRuntime"]["AllowedValues"]
    assert template["Globals"]["Function"]["Architectures"] == ["arm64"]
    layer = {lock.output: lock for lock in LOCKS if lock.output.startswith("layers/")}
    assert set(layer) == {f"layers/mailcore/requirements-{runtime}.txt" for runtime in runtimes}
    for runtime in runtimes:
        lock = layer[f"layers/mailcore/requirements-{runtime}.txt"]
        assert (lock.python, lock.platform) == (runtime.removeprefix("python"),
                                                "aarch64-manylinux2014")

    task = template["Resources"]["EdgeTaskDefinition"]["Properties"]
    assert task["RuntimePlatform"]["CpuArchitecture"] == "ARM64"
    [base] = re.findall(r"^FROM python:(\d+\.\d+)-slim$",
                        (ROOT / "edge" / "Dockerfile").read_text(), re.MULTILINE)
    [edge] = [lock for lock in LOCKS if lock.output == "edge/requirements.txt"]
    assert (edge.python, edge.platform) == (base, "aarch64-manylinux2014")


def test_the_edge_runs_the_versions_the_functions_run():
    functions = _pins(ROOT / "layers" / "mailcore" / "requirements-python3.12.txt")
    edge = _pins(ROOT / "edge" / "requirements.txt")
    assert functions
    assert {name: edge.get(name) for name in functions} == functions


def test_every_install_that_builds_or_ships_checks_hashes_from_a_lock():
    installs = []
    for path in ("Makefile", "layers/mailcore/Makefile", "edge/Dockerfile"):
        text = (ROOT / path).read_text().replace("\\\n", " ")
        installs += [(path, line) for line in text.splitlines()
                     if re.search(r"pip (install|sync)\b", line)
                     and not line.lstrip().startswith(("#", "@#"))]
    assert len(installs) == 7, installs
    for path, line in installs:
        editable_project = "--no-deps" in line and line.rstrip().endswith("-e .")
        assert editable_project or ("--require-hashes" in line and re.search(
            r"requirements\S*\.txt", line)), (path, line)
