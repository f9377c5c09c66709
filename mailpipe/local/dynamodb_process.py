"""DynamoDB on a core of its own: moto's DynamoDB served by a second process.

Filing a message costs the process that serves moto more CPU than any other part of the
local stack, and a Python process runs on one core at a time (the GIL): with every service
in `mailpipe up`, that process held one core for most of the time (11.1 ms of CPU per
message filed at 73 a second: 81%), the machine's two cores not both busy. DynamoDB was about
half of its work and shares no state with the other services (S3's notifications go to
SQS; those two stay together), so it runs here: the stack's functions and edge reach it
directly (AWS_ENDPOINT_URL_DYNAMODB, which botocore reads), and the stack's one public AWS
endpoint forwards DynamoDB calls here for everyone else (provisioning, tests, `mailpipe
user add`). Spread over two processes, the rate moved little (73 to 77 a second): each
filing now waits on its requests more than on either process (docs/PERFORMANCE.md, 9).

Requests are metered here as in the main server, and the stack's Meter adds them in
(GET METER_PATH). A call the public endpoint forwarded was metered there and says so
(FORWARDED_HEADER), so it is not counted twice.

    python -m mailpipe.local.dynamodb_process HOST    (prints {"port": N} once listening)
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import urllib.request
from typing import Any

from mailpipe.local import moto_patches
from mailpipe.local.metering import METER_PATH, Meter, MeteredMotoServer

START_SECONDS = 60


class DynamoDbProcess:
    """The child process, seen from `mailpipe up`."""

    def __init__(self, host: str) -> None:
        self._host = host
        self._process: subprocess.Popen[str] | None = None
        self.endpoint = ""

    def start(self) -> None:
        # stdin stays open for the child's life: when this process ends, however it ends,
        # the child reads end-of-file and stops too.
        self._process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "mailpipe.local.dynamodb_process", self._host],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], START_SECONDS)
        line = self._process.stdout.readline() if ready else ""
        if not line:
            self.stop()
            raise RuntimeError("moto's DynamoDB process did not start")
        self.endpoint = f"http://{self._host}:{json.loads(line)['port']}"

    def exit_status(self) -> int | None:
        """Its exit status once it has ended; None while it runs (or before it started)."""
        return None if self._process is None else self._process.poll()

    def snapshot(self) -> dict[str, Any]:
        """What its meter counted (Meter.snapshot's shape)."""
        with urllib.request.urlopen(self.endpoint + METER_PATH, timeout=10) as response:  # noqa: S310 (our own endpoint)
            return dict(json.loads(response.read()))

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    # Ctrl-C reaches the whole process group; `mailpipe up` stops this process itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    moto_patches.apply()
    server = MeteredMotoServer(Meter(), sys.argv[1], 0, serve_meter=True)
    server.start()
    print(json.dumps({"port": server.port}), flush=True)
    sys.stdin.read()  # until `mailpipe up` closes it, or ends
    server.stop()


if __name__ == "__main__":
    main()
