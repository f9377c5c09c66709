"""The house's size rule (issue 26): no module of the product over 400 lines, so each file
holds one idea a newcomer can read whole. Tests and benches are not counted."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("layers", "edge", "functions", "mailpipe")
MAX_LINES = 400


def _modules() -> list[Path]:
    return sorted(path for top in PRODUCT for path in (ROOT / top).rglob("*.py")
                  if "__pycache__" not in path.parts and ".aws-sam" not in path.parts)


def test_the_product_has_modules_to_measure() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in _modules()}
    assert {"edge/__main__.py", "functions/file_message/app.py"} <= names


@pytest.mark.parametrize("path", _modules(), ids=lambda path: path.relative_to(ROOT).as_posix())
def test_no_product_module_is_over_400_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)}: {lines} lines"
