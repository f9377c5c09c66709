"""Readable log lines from the JSON that Powertools writes in every process."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time

_HIDDEN_KEYS = {
    "timestamp", "level", "location", "service", "message", "cold_start", "function_name",
    "function_memory_size", "function_arn", "function_request_id", "xray_trace_id",
    "sampling_rate", "correlation_id",
}
_lock = threading.Lock()


def render(source: str, line: str) -> str:
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        return f"{time.strftime('%H:%M:%S')} {'':5} {source:<18} {line}"
    if "_aws" in record:
        metrics = [
            f"{metric['Name']}={record.get(metric['Name'])}"
            for directive in record["_aws"].get("CloudWatchMetrics", [])
            for metric in directive.get("Metrics", [])
        ]
        return f"{time.strftime('%H:%M:%S')} {'METRIC':5} {source:<18} {' '.join(metrics)}"
    extras = " ".join(
        f"{key}={value}" for key, value in record.items() if key not in _HIDDEN_KEYS
    )
    level = str(record.get("level", ""))[:5]
    return (f"{time.strftime('%H:%M:%S')} {level:5} {source:<18} "
            f"{record.get('message', '')} {extras}").rstrip()


def emit(source: str, line: str) -> None:
    text = render(source, line)
    with _lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


class _RuntimeHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        emit("mailpipe", json.dumps({"level": record.levelname, "message": record.getMessage()}))


def route_runtime_logs(level: int = logging.INFO) -> None:
    """The runtime's own lines (pollers, gateway) in the same format as the functions'."""
    runtime = logging.getLogger("mailpipe")
    if not any(isinstance(handler, _RuntimeHandler) for handler in runtime.handlers):
        runtime.addHandler(_RuntimeHandler())
    runtime.setLevel(level)
    runtime.propagate = False
