"""Every lock file of the project: what it locks, for which Python and platform, and how.

`make lock` runs this to write each lock with `uv pip compile --generate-hashes`: exact
versions and the hash of every file PyPI has for them, so an install from the lock gets the
same bytes on any machine, or fails. Each lock's header holds a digest of its inputs and its
target; `--check` (and tests/unit/test_locks.py) compares it with the inputs as they are now,
without the network, so a lock that no longer follows its input is found before it ships.

    python requirements/lock.py            # relock what changed, keeping other pins
    python requirements/lock.py --upgrade  # relock everything at the newest allowed versions
    python requirements/lock.py --check    # exit 1 naming each stale lock
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# This machine and CI: Debian on x86_64 with Python 3.11.
DEVELOPMENT = ("3.11", "x86_64-unknown-linux-gnu")
# The template's Architectures and the edge task's CpuArchitecture are arm64; Lambda's
# Python runtimes run on Amazon Linux (glibc 2.26 and newer), which manylinux2014 fits.
LAMBDA_PLATFORM = "aarch64-manylinux2014"
# The template's PythonRuntime AllowedValues: one layer lock for each.
LAMBDA_PYTHONS = ("3.11", "3.12", "3.13")
# The edge image's base, python:3.12-slim (edge/Dockerfile).
EDGE_PYTHON = "3.12"
DIGEST_LINE = re.compile(r"^# inputs: sha256:([0-9a-f]{64})$", re.MULTILINE)
_INCLUDE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)[=\s]+(\S+)", re.MULTILINE)


@dataclass(frozen=True)
class Lock:
    """One lock file (`output`) made from one input file for one Python and platform."""

    output: str
    source: str
    python: str
    platform: str

    def inputs(self) -> list[Path]:
        """The source and every requirements file it includes (-r, -c), in order."""
        found: list[Path] = []
        pending = [ROOT / self.source]
        while pending:
            path = pending.pop(0)
            if path in found:
                continue
            found.append(path)
            if path.suffix == ".in":
                text = path.read_text()
                pending.extend((path.parent / name).resolve() for name in _INCLUDE.findall(text))
        return found

    def digest(self) -> str:
        """sha256 over the target and what each input says about dependencies."""
        hasher = hashlib.sha256(f"python {self.python} on {self.platform}\n".encode())
        for path in self.inputs():
            hasher.update(f"{path.relative_to(ROOT).as_posix()}\n".encode())
            hasher.update(_dependency_text(path).encode())
        return hasher.hexdigest()

    def recorded_digest(self) -> str | None:
        """The digest written into the lock's header when it was made, if any."""
        path = ROOT / self.output
        if not path.exists():
            return None
        match = DIGEST_LINE.search(path.read_text())
        return match.group(1) if match else None


def _dependency_text(path: Path) -> str:
    """What of an input decides the lock: a requirements file whole; of pyproject.toml the
    dependency lists only (its tool settings can change without making the lock stale)."""
    if path.name != "pyproject.toml":
        return path.read_text()
    project = tomllib.loads(path.read_text())
    return json.dumps({"requires-python": project["project"].get("requires-python"),
                       "dependencies": project["project"].get("dependencies", []),
                       "dev": project["project"].get("optional-dependencies", {}).get("dev", []),
                       "build": project["build-system"]["requires"]}, sort_keys=True)


LOCKS = (
    # uv itself, installed with pip into the development environment first; uv installs
    # every other lock.
    Lock("requirements/uv.txt", "requirements/uv.in", *DEVELOPMENT),
    # The development environment: the project's dependencies, its dev extra and its build
    # requirement (the editable install builds without isolation, from this lock).
    Lock("requirements/dev.txt", "pyproject.toml", *DEVELOPMENT),
    Lock("requirements/sam.txt", "requirements/sam.in", *DEVELOPMENT),
    Lock("requirements/checkov.txt", "requirements/checkov.in", *DEVELOPMENT),
    *(Lock(f"layers/mailcore/requirements-python{python}.txt",
           "layers/mailcore/requirements.in", python, LAMBDA_PLATFORM)
      for python in LAMBDA_PYTHONS),
    Lock("edge/requirements.txt", "edge/requirements.in", EDGE_PYTHON, LAMBDA_PLATFORM),
)


def stale_locks() -> list[Lock]:
    return [lock for lock in LOCKS if lock.recorded_digest() != lock.digest()]


def _compile(lock: Lock, uv: str, upgrade: bool) -> None:
    command = [uv, "pip", "compile", "--quiet", "--generate-hashes",
               "--python-version", lock.python, "--python-platform", lock.platform,
               "--custom-compile-command", "make lock", "--output-file", lock.output]
    stdin = None
    if lock.source == "pyproject.toml":
        # The build requirement comes in on standard input, so the lock holds it too.
        build = tomllib.loads((ROOT / lock.source).read_text())["build-system"]["requires"]
        command += [lock.source, "-", "--extra", "dev"]
        stdin = "\n".join(build) + "\n"
    else:
        command.append(lock.source)
    if upgrade:
        command.append("--upgrade")
    subprocess.run(command, cwd=ROOT, input=stdin, text=True, check=True)  # noqa: S603 (uv)
    path = ROOT / lock.output
    header, found, body = path.read_text().partition("\n#    make lock\n")
    if not found:
        sys.exit(f"{lock.output}: no `make lock` line in uv's header to put the digest under")
    path.write_text(f"{header}\n#    make lock\n# inputs: sha256:{lock.digest()}\n{body}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="name stale locks, change none")
    parser.add_argument("--upgrade", action="store_true", help="newest allowed versions")
    arguments = parser.parse_args()
    if arguments.check:
        stale = stale_locks()
        for lock in stale:
            print(f"{lock.output} is stale against {lock.source}: run `make lock`")
        sys.exit(1 if stale else 0)
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        sys.exit("uv is not installed: run `make .venv/bin/.installed` first")
    for lock in LOCKS:
        _compile(lock, uv, arguments.upgrade)


if __name__ == "__main__":
    main()
