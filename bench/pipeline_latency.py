"""End-to-end latency of the local stack: SMTP 250 -> message visible through the HTTP API.

Starts `mailpipe up` as a user would, sends N messages with smtplib (one session),
and after each 250 polls GET /v1/messages/{id} (the id is in the 250 reply) until it
answers 200. Baseline in the same run: the latency of that same GET once the message
is visible, i.e. one API round trip through the local gateway and the serve_api function.

    python bench/pipeline_latency.py [--messages 200]
"""

from __future__ import annotations

import argparse
import platform
import smtplib
import statistics
import time

import requests

from mailpipe.local.launcher import start_stack

ACCOUNT, PASSWORD = "bob@example.test", "bench-password"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200)
    arguments = parser.parse_args()

    stack = start_stack(["example.test"], {ACCOUNT: PASSWORD})
    try:
        session = requests.Session()
        token = session.post(f"{stack.api}/session", timeout=10,
                             json={"address": ACCOUNT, "password": PASSWORD}).json()["token"]
        session.headers["Authorization"] = f"Bearer {token}"
        latencies: list[float] = []
        api_round_trips: list[float] = []
        body = "\r\n".join(["x" * 98] * 10)  # about 1 KiB
        with smtplib.SMTP("127.0.0.1", stack.smtp_port) as client:
            client.ehlo("bench.test")
            for number in range(arguments.messages):
                message = (f"From: alice@crepes.fr\r\nTo: {ACCOUNT}\r\n"
                           f"Subject: bench {number}\r\n\r\n{body}\r\n").encode()
                client.mail("alice@crepes.fr")
                client.rcpt(ACCOUNT)
                code, reply = client.data(message)
                accepted = time.perf_counter()
                assert code == 250, reply
                message_id = reply.decode().rsplit(" ", 1)[-1]
                while session.get(f"{stack.api}/messages/{message_id}",
                                  timeout=10).status_code != 200:
                    time.sleep(0.01)
                latencies.append(time.perf_counter() - accepted)
                started = time.perf_counter()
                session.get(f"{stack.api}/messages/{message_id}", timeout=10)
                api_round_trips.append(time.perf_counter() - started)
    finally:
        stack.stop()

    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    baseline = statistics.median(api_round_trips)
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}")
    print(f"messages: {len(latencies)}")
    print(f"pipeline latency (SMTP 250 -> visible via API): p50 {p50 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
    print(f"baseline (one API GET of a visible message): p50 {baseline * 1000:.1f} ms")
    print(f"ratio pipeline p50 / API GET p50: {p50 / baseline:.1f}")
    print(f"target p50 < 1000 ms: {'met' if p50 < 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
