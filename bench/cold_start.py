"""Cold start: import time of each function's handler and the size of what is deployed.

Uses the artefacts `sam build` made (make template builds them into .aws-sam/check):
each function's code and the mailcore layer with its dependencies. Each handler is
imported in a fresh process, as a new Lambda execution environment does, with the
layer on the path and boto3 from this environment (Lambda's runtime provides it);
`python -X importtime` says which imports cost most.

    python bench/cold_start.py [--runs 7] [--build-dir .aws-sam/check]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ["FileMessageFunction", "ServeApiFunction", "DeliverMailFunction",
             "LearnJunkFunction", "ExpireJunkFunction"]
LAYER = "MailcoreLayer"
TARGET_MS = 300
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
_TIMED_IMPORT = ("import time, sys; started = time.perf_counter(); import app; "
                 "print((time.perf_counter() - started) * 1000)")


def _size(path: Path) -> tuple[int, int]:
    """(bytes on disk, bytes zipped) of a folder."""
    raw = 0
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(path.rglob("*")):
            if file.is_file():
                raw += file.stat().st_size
                archive.write(file, file.relative_to(path))
    return raw, len(buffer.getvalue())


def _environment(layer: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(layer / "python"), "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "bench",
            "POWERTOOLS_METRICS_NAMESPACE": "bench"}


def _import_ms(function: Path, layer: Path, module: str = "app") -> float:
    script = _TIMED_IMPORT.replace("import app", f"import {module}")
    result = subprocess.run([sys.executable, "-c", script], cwd=function,
                            env=_environment(layer), capture_output=True, text=True,
                            check=True)
    return float(result.stdout.strip())


def _costliest(function: Path, layer: Path) -> list[tuple[str, float]]:
    """Import time (self) by top-level package, in ms, largest first."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import app"],
                            cwd=function, env=_environment(layer), capture_output=True,
                            text=True, check=True)
    by_package: Counter[str] = Counter()
    for line in result.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            by_package[match.group(4).split(".")[0]] += int(match.group(1)) / 1000
    return by_package.most_common(5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--build-dir", type=Path, default=ROOT / ".aws-sam/check")
    arguments = parser.parse_args()
    build = arguments.build_dir.resolve()  # the layer goes on PYTHONPATH from another folder
    if not (build / LAYER).is_dir():
        sys.exit(f"no build in {build}: run `make template` first")
    layer = build / LAYER
    layer_raw, layer_zipped = _size(layer)
    # The baseline, in the same run: what any Python function using boto3 pays. Taken in
    # rounds, the baseline then each handler once, so that load from other work on the
    # machine weighs on both sides of each ratio alike.
    samples: dict[str, list[float]] = {name: [] for name in ["boto3", *FUNCTIONS]}
    for _ in range(arguments.runs):
        samples["boto3"].append(_import_ms(build / FUNCTIONS[0], layer, "boto3"))
        for name in FUNCTIONS:
            samples[name].append(_import_ms(build / name, layer))
    baseline = statistics.median(samples["boto3"])
    print(f"baseline: `import boto3` alone, p50 {baseline:.0f} ms")
    print(f"layer {LAYER}: {layer_raw / 2**20:.1f} MiB unzipped, "
          f"{layer_zipped / 2**20:.1f} MiB zipped\n")
    print("| function | import p50 ms | vs boto3 alone | min | max | code KiB "
          "| with layer MiB unzipped | zipped MiB | costliest imports (self ms) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name in FUNCTIONS:
        function = build / name
        times = sorted(samples[name])
        code_raw, code_zipped = _size(function)
        costliest = ", ".join(f"{package} {ms:.0f}" for package, ms in
                              _costliest(function, layer))
        verdict = "" if statistics.median(times) < TARGET_MS else " (over target)"
        print(f"| {name} | {statistics.median(times):.0f}{verdict} "
              f"| {statistics.median(times) / baseline:.2f}x | {times[0]:.0f} "
              f"| {times[-1]:.0f} | {code_raw / 1024:.0f} "
              f"| {(code_raw + layer_raw) / 2**20:.1f} "
              f"| {(code_zipped + layer_zipped) / 2**20:.1f} | {costliest} |")
    print(f"\ntarget: under {TARGET_MS} ms per handler import on this machine; "
          "Lambda's limit: 250 MiB unzipped with layers")


if __name__ == "__main__":
    main()
