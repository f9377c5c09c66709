"""Peak memory of the functions on the largest message the edge accepts, of every shape.

Each message (just under 25 MiB, the edge's SIZE) is stored in a moto server as the edge
stores it; each handler then runs in a fresh process, as in a new Lambda execution
environment, and reports its peak RSS after import, after handling a small message first
(the baseline: its AWS clients made and their service models loaded, as in a warm Lambda)
and after handling the message: file_message filing it, and serve_api answering
GET /v1/messages/{id}, .../raw and, where the message has one, .../attachments/0.
The ratio is what the message added to the peak, over the message's size. The first
shape, an ordinary message (text, HTML and three binary attachments), is the baseline of
the same size measured in the same run; every other shape is one that a line-per-str
parse makes far heavier (issue 25: 20 MiB of empty lines took file_message to 940 MiB).
The functions have 512 MB (the template's MemorySize).

    python bench/memory.py [--shape NAME ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
ACCOUNT = "bob@example.test"
LIMIT_MIB = 512
MAX_MESSAGE = 25 * 1024 * 1024
FILL = MAX_MESSAGE - 64 * 1024  # with room for the Received field the edge adds

RUNNER = r"""
import json, os, sys, importlib.util
def peak_mib():
    # VmHWM: this process's peak resident memory (ru_maxrss would count the parent's,
    # from before exec).
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
app = importlib.util.module_from_spec(spec); spec.loader.exec_module(app)
class Context:
    function_name = "bench"; memory_limit_in_mb = 512; aws_request_id = "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    def get_remaining_time_in_millis(self): return 30_000  # the template's Timeout
after_import = peak_mib()
# A small message first, as a warm Lambda has: clients made, service models loaded.
app.lambda_handler(json.loads(sys.argv[3]), Context())
warm = peak_mib()
response = app.lambda_handler(json.loads(sys.argv[2]), Context())
status = response.get("statusCode", 200) if isinstance(response, dict) else 200
failures = response.get("batchItemFailures") if isinstance(response, dict) else None
print(json.dumps({"after_import": after_import, "warm": warm, "peak": peak_mib(),
                  "status": status,
                  "failures": failures}))
"""


def _header(content_type: str = "text/plain", extra: str = "") -> bytes:
    return (f"From: alice@crepes.fr\r\nTo: {ACCOUNT}\r\nSubject: shape\r\n"
            f"Message-ID: <shape@crepes.fr>\r\nMIME-Version: 1.0\r\n{extra}"
            f"Content-Type: {content_type}\r\n\r\n").encode()


def _filled(head: bytes, unit: bytes, tail: bytes = b"") -> bytes:
    return head + unit * ((FILL - len(head) - len(tail)) // len(unit)) + tail


def _ordinary() -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "alice@crepes.fr", ACCOUNT, "big"
    message.set_content("see the attachments\n" * 1000)
    message.add_alternative("<p>see the attachments</p>\n" * 1000, subtype="html")
    # base64 makes 3 bytes 4, in lines of 76 plus CRLF: three parts of this size fill the
    # message to just under the limit.
    part = (FILL - 300_000) * 3 // 4 * 76 // 78 // 3
    for number in range(3):
        message.add_attachment(os.urandom(part), maintype="application", subtype="octet-stream",
                               filename=f"part{number}.bin")
    # With CRLF line ends, as the edge stores what SMTP carried.
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def _one_attachment() -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "alice@crepes.fr", ACCOUNT, "one"
    message.set_content("see the attachment\n")
    message.add_attachment(os.urandom((FILL - 10_000) * 3 // 4 * 76 // 78),
                           maintype="application", subtype="octet-stream", filename="big.bin")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def _tiny_parts(count: int) -> bytes:
    head = _header('multipart/mixed; boundary="b"')
    each = (FILL - len(head)) // count
    part = b"--b\r\nContent-Type: text/plain\r\n\r\n"
    body = part + b"a\r\n" * max(0, (each - len(part) - 2) // 3)
    return head + (body + b"\r\n") * count + b"--b--\r\n"


def _nested(levels: int, kind: str) -> bytes:
    opening, closing = b"", b""
    for level in range(levels):
        if kind == "multipart":
            opening += (f'Content-Type: multipart/mixed; boundary="n{level}"\r\n\r\n'
                        f"--n{level}\r\n").encode()
            closing = f"\r\n--n{level}--\r\n".encode() + closing
        else:
            opening += b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n"
    opening += b"Content-Type: text/plain\r\n\r\n"
    return _filled(_header("text/plain").rsplit(b"Content-Type", 1)[0] + opening, b"\r\n",
                   closing)


SHAPES = {
    "ordinary (baseline)": _ordinary,
    "empty lines": lambda: _filled(_header(), b"\r\n"),
    "one-character lines": lambda: _filled(_header(), b"a\r\n"),
    "one line": lambda: _filled(_header(), b"x", b"\r\n"),
    "line ends only, no header": lambda: b"\r\n" * (FILL // 2),
    "quoted-printable soft breaks": lambda: _filled(
        _header("text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable\r\n"),
        b"=\r\n"),
    "HTML of empty elements": lambda: _filled(_header("text/html"), b"<b></b>\r\n"),
    "HTML with a tag never closed": lambda: _filled(_header("text/html") + b"<", b"x "),
    "999 parts of one-character lines": lambda: _tiny_parts(999),
    "100,000 tiny parts (over the part bound)": lambda: _tiny_parts(100_000),
    "95 nested multiparts, empty lines": lambda: _nested(95, "multipart"),
    "95 nested messages, empty lines": lambda: _nested(95, "message"),
    "header section only (short fields)": lambda: _filled(b"", b"X-A: a\r\n"),
    "one base64 attachment": _one_attachment,
}


def _run(function: str, event: dict, warm_up: dict, environment: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(ROOT / "functions" / function / "app.py"),
         json.dumps(event), json.dumps(warm_up)], env=environment, capture_output=True,
        text=True, check=False,
        cwd=ROOT / "functions" / function)  # on the path, as Lambda's task folder is
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def _api_event(path: str) -> dict:
    event = json.loads((ROOT / "events/apigw_list_messages.json").read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["queryStringParameters"], event["rawQueryString"] = {}, ""
    event.pop("pathParameters", None)
    event["requestContext"]["authorizer"]["jwt"]["claims"]["username"] = ACCOUNT
    return event


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from mailcore.adapters.aws.s3_store import S3RawMessageStore
    from mailcore.domain.envelope import Envelope
    from mailcore.domain.ids import new_message_id
    from mailpipe.local.launcher import free_port
    from mailpipe.local.provision import provision
    from mailpipe.local.stack import local_session

    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", action="append", choices=sorted(SHAPES))
    arguments = parser.parse_args()
    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        provisioned = provision(ROOT, "bench", {"HostedDomains": "example.test"},
                                local_session(), endpoint, REGION)
        environment = {
            **os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION, "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_NAMESPACE": "bench",
            "PYTHONPATH": str(ROOT / "layers/mailcore/python"),
            **{name: value for name, value in
               provisioned.functions["FileMessageFunction"].environment.items()
               if name.startswith("MAILPIPE_")}}
        bucket = provisioned.outputs["MessageBucketName"]
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                          aws_access_key_id="bench", aws_secret_access_key="bench")

        def stored(data: bytes) -> tuple[str, dict]:
            identifier = new_message_id()
            key = S3RawMessageStore(s3, bucket).put(identifier, data, Envelope(
                mail_from="alice@crepes.fr", rcpt_tos=(ACCOUNT,), peer="192.0.2.1",
                helo="crepes.fr", tls=True, received_at=datetime.now(UTC)))
            event = json.loads((ROOT / "events/sqs_s3_object_created.json").read_text())
            notification = json.loads(event["Records"][0]["body"])
            notification["Records"][0]["s3"]["bucket"]["name"] = bucket
            notification["Records"][0]["s3"]["object"]["key"] = key.replace("/", "%2F")
            notification["Records"][0]["s3"]["object"]["size"] = len(data)
            event["Records"][0]["body"] = json.dumps(notification)
            return identifier, event

        small_id, small_event = stored(
            b"From: alice@crepes.fr\r\nTo: " + ACCOUNT.encode() + b"\r\n\r\nhello\r\n")
        print(f"each message just under {MAX_MESSAGE / 2**20:.0f} MiB (the edge's SIZE); "
              f"functions have {LIMIT_MIB} MB; ratio = (peak - after a small message) / "
              "message size\n")
        print("| shape | MiB | handler and request | after a small message MiB "
              "| peak MiB | ratio | share of 512 MB | answer |")
        print("|---|---:|---|---:|---:|---:|---:|---|")
        for shape in arguments.shape or SHAPES:
            raw = SHAPES[shape]()
            assert len(raw) <= MAX_MESSAGE, (shape, len(raw))
            message_id, event = stored(raw)
            small_get = _api_event(f"/v1/messages/{small_id}")
            runs = [
                ("file_message", "file_message", event, small_event),
                ("GET /v1/messages/{id}", "serve_api",
                 _api_event(f"/v1/messages/{message_id}"), small_get),
                ("GET .../raw", "serve_api", _api_event(f"/v1/messages/{message_id}/raw"),
                 small_get),
            ]
            if shape in ("ordinary (baseline)", "one base64 attachment"):
                runs.append(("GET .../attachments/0", "serve_api",
                             _api_event(f"/v1/messages/{message_id}/attachments/0"),
                             small_get))
            size_mib = len(raw) / 2**20
            for title, function, request, warm_up in runs:
                figures = _run(function, request, warm_up, environment)
                answer = (f"{figures['status']}" if figures["failures"] is None
                          else f"{len(figures['failures'])} failed records")
                ratio = (figures["peak"] - figures["warm"]) / size_mib
                print(f"| {shape} | {size_mib:.1f} | {title} | {figures['warm']:.0f} "
                      f"| {figures['peak']:.0f} | {ratio:.2f}x "
                      f"| {figures['peak'] / LIMIT_MIB:.0%} | {answer} |", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
