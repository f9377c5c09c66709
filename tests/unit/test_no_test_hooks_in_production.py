"""What ships has no test hooks: faults are injected only by wiring that the tests and the
local runtime's test mode build (mailpipe/local/faults.py), never by a switch that a
Lambda function, the edge's image or the mailcore layer reads.

What ships is read as Python (ast), so words in comments and docstrings ("any storage
fault answers 451") are not hooks, while every name, import and string is looked at.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

# The Lambda functions, the edge's image (edge/ and the layer's mailcore, as the Dockerfile
# copies them) and the layer.
SHIPPED = ("functions", "edge", "layers/mailcore/python/mailcore")
FAULT = re.compile(r"(?<!de)fault", re.IGNORECASE)  # "fault", "faults"; not "default"
# Code that exists for tests and for the local runtime only.
NOT_SHIPPED_PACKAGES = ("mailpipe", "tests", "bench")


def _shipped_modules() -> list[Path]:
    return sorted(path for folder in SHIPPED for path in (ROOT / folder).rglob("*.py"))


def _hooks(source: str) -> list[str]:
    """Imports of test or local-runtime code or of anything named for faults, names
    (functions, classes, arguments, attributes, variables) and strings naming a fault."""
    found = []
    for node in ast.walk(ast.parse(source)):
        imported = []
        if isinstance(node, ast.Import):
            imported = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported = [f"{node.module or ''}.{alias.name}" for alias in node.names]
        found += [f"import {name}" for name in imported
                  if FAULT.search(name) or name.split(".")[0] in NOT_SHIPPED_PACKAGES]
        names = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = [node.name]
        elif isinstance(node, ast.arg):
            names = [node.arg]
        elif isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.keyword) and node.arg:
            names = [node.arg]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # A switch read from the environment is a string: MAILPIPE_FAULT_...; prose
            # (docstrings, log phrases) is left to the other checks.
            names = [node.value] if "MAILPIPE_FAULT" in node.value.upper() else []
        found += [f"name {name!r}" for name in names if FAULT.search(name)]
    return found


def test_the_check_finds_the_hooks_it_is_for():
    assert _hooks("from mailcore.adapters.faults import FilingFaults") == [
        "import mailcore.adapters.faults.FilingFaults"]
    assert _hooks("switch = os.environ.get('MAILPIPE_FAULT_STORAGE_SWITCH')") == [
        "name 'MAILPIPE_FAULT_STORAGE_SWITCH'"]
    assert _hooks("faults = adapters.filing_faults") == [
        "name 'faults'", "name 'filing_faults'"]
    assert _hooks("def f(event, fault_plan=None): pass") == ["name 'fault_plan'"]
    assert _hooks("from mailpipe.local import worker") == ["import mailpipe.local.worker"]
    assert _hooks("x = field(default_factory=list)  # any storage fault: 451") == []


@pytest.mark.parametrize("path", _shipped_modules(), ids=lambda path: str(path.relative_to(ROOT)))
def test_shipped_code_has_no_fault_switch_or_fault_import(path: Path):
    assert not FAULT.search(path.name), "a fault module in what ships"
    assert _hooks(path.read_text()) == []


def test_the_template_sets_no_fault_switch():
    assert "MAILPIPE_FAULT" not in (ROOT / "template.yaml").read_text()
