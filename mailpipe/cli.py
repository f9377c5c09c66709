"""The `mailpipe` command: run the system locally, manage accounts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import boto3

from mailcore.adapters.aws.cognito_directory import CognitoAccountDirectory
from mailcore.errors import MailError
from mailcore.services.accounts import add_account
from mailpipe.local.stack import ROOT, STACK_NAME, StackOptions, local_session, run


def _user(text: str) -> tuple[str, str]:
    address, separator, password = text.partition(":")
    if not separator or not address or not password:
        raise argparse.ArgumentTypeError("expected ADDRESS:PASSWORD")
    return address, password


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
    up.add_argument("--http-port", type=int, default=8025, help="HTTP API port (default 8025)")
    up.add_argument("--aws-port", type=int, default=4566,
                    help="port of the embedded AWS, moto (default 4566)")
    up.add_argument("--hostname", help="the name the SMTP edge greets with")
    up.add_argument("--state-dir", type=Path, default=ROOT / ".mailpipe",
                    help="where the local stack keeps its TLS certificate (default .mailpipe)")

    user = commands.add_parser("user", help="manage accounts")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser("add", help="add an account")
    add.add_argument("address")
    add.add_argument("--password", required=True)
    target = add.add_mutually_exclusive_group()
    target.add_argument("--aws-port", type=int, default=4566,
                        help="the running local stack's AWS port (default 4566)")
    target.add_argument("--stack", help="a deployed stack's name (uses your AWS credentials)")
    return parser


def _directory_for(stack: str | None, aws_port: int) -> CognitoAccountDirectory:
    if stack:
        outputs = {
            output["OutputKey"]: output["OutputValue"]
            for output in boto3.client("cloudformation").describe_stacks(StackName=stack)[
                "Stacks"][0].get("Outputs", [])
        }
        client = boto3.client("cognito-idp")
        return CognitoAccountDirectory(client, outputs["UserPoolId"], outputs["UserPoolClientId"])
    client = local_session().client("cognito-idp", endpoint_url=f"http://127.0.0.1:{aws_port}")
    pools = [pool for pool in client.list_user_pools(MaxResults=60)["UserPools"]
             if pool["Name"] == f"{STACK_NAME}-accounts"]
    if not pools:
        raise SystemExit(f"no local stack answers on port {aws_port} (is `mailpipe up` running?)")
    pool_id = pools[0]["Id"]
    client_id = client.list_user_pool_clients(UserPoolId=pool_id)["UserPoolClients"][0]["ClientId"]
    return CognitoAccountDirectory(client, pool_id, client_id)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "up":
        run(StackOptions(
            domains=arguments.domains or ["example.test"],
            users=arguments.users,
            smtp_port=arguments.smtp_port,
            submission_port=arguments.submission_port,
            http_port=arguments.http_port,
            aws_port=arguments.aws_port,
            hostname=arguments.hostname,
            state_dir=arguments.state_dir,
        ))
        return 0
    if arguments.command == "user" and arguments.user_command == "add":
        try:
            address = add_account(arguments.address, arguments.password, None,
                                  _directory_for(arguments.stack, arguments.aws_port))
        except MailError as exc:
            print(f"mailpipe: {exc.public}", file=sys.stderr)
            return 2
        print(f"account {address} added")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
