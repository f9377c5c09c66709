"""The `mailpipe` command: run the system locally, manage accounts."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3

from mailcore.adapters.aws.cognito_directory import CognitoAccountDirectory
from mailcore.domain.retry import parse_duration
from mailcore.errors import MailError
from mailcore.services.accounts import add_account
from mailpipe.local.stack import (
    DEFAULT_STATE_DIR,
    StackOptions,
    local_session,
    outputs_file,
    run,
)
from mailpipe.queue_admin import QueueTarget, list_jobs, redrive, retry_deferred
from mailpipe.webmail import publish


def _user(text: str) -> tuple[str, str]:
    address, separator, password = text.partition(":")
    if not separator or not address or not password:
        raise argparse.ArgumentTypeError("expected ADDRESS:PASSWORD")
    return address, password


def _mx(text: str) -> tuple[str, str]:
    domain, separator, hop = text.partition("=")
    host, colon, port = hop.rpartition(":")
    if not separator or not domain or not colon or not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected DOMAIN=HOST:PORT")
    return domain.lower(), hop


def _duration(text: str) -> str:
    try:
        for part in text.split(","):
            parse_duration(part)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailpipe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the whole system locally (moto as AWS)")
    up.add_argument("--domain", action="append", dest="domains", metavar="DOMAIN",
                    help="a hosted mail domain (repeatable; default example.test)")
    up.add_argument("--user", action="append", dest="users", type=_user, default=[],
                    metavar="ADDRESS:PASSWORD", help="an account to create (repeatable)")
    up.add_argument("--smtp-port", type=int, default=2525, help="MX port (default 2525)")
    up.add_argument("--submission-port", type=int, default=2587,
                    help="submission port (default 2587)")
    up.add_argument("--imap-port", type=int, default=2143,
                    help="IMAP port, STARTTLS (default 2143)")
    up.add_argument("--imaps-port", type=int, default=2993,
                    help="IMAP port, implicit TLS (default 2993)")
    up.add_argument("--http-port", type=int, default=8025, help="HTTP API port (default 8025)")
    up.add_argument("--aws-port", type=int, default=4566,
                    help="port of the embedded AWS, moto (default 4566)")
    up.add_argument("--hostname", help="the name the SMTP edge greets with")
    up.add_argument("--mx", action="append", dest="mx", type=_mx, default=[],
                    metavar="DOMAIN=HOST:PORT",
                    help="deliver mail for DOMAIN to HOST:PORT instead of its MX (repeatable)")
    up.add_argument("--retry-schedule", type=_duration, default="5m,10m,20m,40m,80m,160m,4h",
                    help="waits between delivery attempts, e.g. 2s,4s,8s (the last repeats)")
    up.add_argument("--give-up-after", type=_duration, default="5d",
                    help="how long deferred mail is retried before it bounces, e.g. 30s")
    up.add_argument("--inbound-retry-after", type=int, default=180, metavar="SECONDS",
                    help="wait before a message that failed to be filed is tried again")
    up.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                    help="where the local stack keeps its TLS certificate (default .mailpipe)")

    user = commands.add_parser("user", help="manage accounts")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser("add", help="add an account")
    add.add_argument("address")
    add.add_argument("--password", required=True)
    _add_stack_options(add)

    queue = commands.add_parser("queue", help="outgoing mail: list, retry, redrive")
    queue.add_argument("action", nargs="?", choices=["list", "retry", "redrive"],
                       default="list", help="list jobs (default); retry deferred jobs now; "
                       "move dead-lettered jobs back to the queue")
    queue.add_argument("--inbound", action="store_true",
                       help="with redrive: the inbound dead-letter queue (messages that "
                       "could not be filed) back to the inbound queue")
    _add_stack_options(queue)

    webmail = commands.add_parser(
        "webmail", help="put the webmail's files in a deployed stack's webmail bucket")
    webmail.add_argument("action", choices=["publish"])
    _add_stack_options(webmail)
    return parser


def _target(stack: str | None, aws_port: int, state_dir: Path
            ) -> tuple[dict[str, str], Any]:
    """The stack's outputs and a boto3 session that reaches it."""
    if stack:
        session = boto3.session.Session()
        outputs = {
            output["OutputKey"]: output["OutputValue"]
            for output in session.client("cloudformation").describe_stacks(StackName=stack)[
                "Stacks"][0].get("Outputs", [])
        }
        return outputs, lambda service: session.client(service)
    state = outputs_file(state_dir, aws_port)
    if not state.exists():
        raise SystemExit(f"no local stack on AWS port {aws_port} (is `mailpipe up` running?)")
    session = local_session()
    endpoint = f"http://127.0.0.1:{aws_port}"
    return json.loads(state.read_text()), lambda service: session.client(
        service, endpoint_url=endpoint)


def _add_stack_options(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--aws-port", type=int, default=4566,
                        help="the running local stack's AWS port (default 4566)")
    target.add_argument("--stack", help="a deployed stack's name (uses your AWS credentials)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                        help="the local stack's --state-dir (default .mailpipe)")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "up":
        run(StackOptions(
            domains=arguments.domains or ["example.test"],
            users=arguments.users,
            smtp_port=arguments.smtp_port,
            submission_port=arguments.submission_port,
            imap_port=arguments.imap_port,
            imaps_port=arguments.imaps_port,
            http_port=arguments.http_port,
            aws_port=arguments.aws_port,
            hostname=arguments.hostname,
            state_dir=arguments.state_dir,
            mx=dict(arguments.mx),
            retry_schedule=arguments.retry_schedule,
            give_up_after=arguments.give_up_after,
            inbound_retry_after=arguments.inbound_retry_after,
        ))
        return 0
    outputs, client = _target(arguments.stack, arguments.aws_port, arguments.state_dir)
    if arguments.command == "queue":
        target = QueueTarget(client("sqs"), client("dynamodb"), outputs["MailboxTableName"],
                             outputs["OutgoingQueueUrl"], outputs["OutgoingDeadLetterQueueUrl"])
        if arguments.action == "retry":
            print(f"{retry_deferred(target)} job(s) queued again")
        elif arguments.action == "redrive" and arguments.inbound:
            moved = redrive(target.sqs, outputs["InboundDeadLetterQueueUrl"],
                            outputs["InboundQueueUrl"])
            print(f"{moved} message(s) moved back from the inbound dead-letter queue")
        elif arguments.action == "redrive":
            moved = redrive(target.sqs, target.dead_letter_url, target.queue_url)
            print(f"{moved} job(s) moved back from the dead-letter queue")
        else:
            print("\n".join(list_jobs(target)))
        return 0
    if arguments.command == "webmail":
        if "WebmailBucketName" not in outputs:
            raise SystemExit("this stack has no webmail bucket")
        # The page calls the API on its own origin: the distribution sends /v1/* there.
        keys = publish(client("s3"), outputs["WebmailBucketName"],
                       cloudfront=client("cloudfront"),
                       distribution_id=outputs.get("WebmailDistributionId"))
        print(f"{len(keys)} file(s) published; the webmail is at {outputs.get('WebmailUrl')}")
        return 0
    if arguments.command == "user" and arguments.user_command == "add":
        directory = CognitoAccountDirectory(client("cognito-idp"), outputs["UserPoolId"],
                                            outputs["UserPoolClientId"])
        try:
            address = add_account(arguments.address, arguments.password, None, directory)
        except MailError as exc:
            print(f"mailpipe: {exc.public}", file=sys.stderr)
            return 2
        print(f"account {address} added")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
