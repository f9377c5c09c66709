"""One Lambda execution environment: imports a handler once, then serves invocations.

The parent sends one JSON line per invocation on stdin and reads one JSON line back
on the original stdout; whatever the handler prints goes to stderr, as in Lambda
where stdout is the log.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
import traceback
import uuid
from typing import Any

from mailpipe.local import faults


class LocalContext:
    def __init__(self, request_id: str, timeout: int) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:123456789012:function:{self.function_name}"
        )
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    # Ctrl-C reaches the whole process group; the runtime stops its workers itself
    # (closing stdin ends the loop below).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    handler_path, timeout, logical_id = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    module_name, function_name = handler_path.rsplit(".", 1)
    handler = faults.around_handler(
        logical_id, getattr(importlib.import_module(module_name), function_name), os.environ)
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        context = LocalContext(request.get("request_id") or str(uuid.uuid4()), timeout)
        response: dict[str, Any]
        try:
            response = {"result": handler(request["event"], context)}
        except Exception as exc:  # noqa: BLE001 (reported to the caller, as Lambda does)
            traceback.print_exc()
            response = {"error": {"errorType": type(exc).__name__, "errorMessage": str(exc)}}
        sys.stdout.flush()
        protocol.write(json.dumps(response, default=str) + "\n")


if __name__ == "__main__":
    main()
