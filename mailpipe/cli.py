"""The `mailpipe` command: run the system locally, manage accounts and stored mail."""

from __future__ import annotations

import argparse
import json
import string
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from mailcore.adapters.aws.cognito_directory import CognitoAccountDirectory
from mailcore.domain.address import parse_address
from mailcore.domain.retry import parse_duration
from mailcore.errors import InvalidAddress, MailError, StorageUnavailable
from mailcore.services.accounts import add_account
from mailpipe import dns_records, queue_admin, schedule_admin, suppression_admin
from mailpipe.local.stack import (
    DEFAULT_PORTS,
    DEFAULT_STATE_DIR,
    ROOT,
    StackOptions,
    local_session,
    outputs_file,
    run,
)
from mailpipe.local.template import load_template
from mailpipe.webmail import publish


class _Parser(argparse.ArgumentParser):
    """argparse's, but a mistake is one line on stderr (then status 2), not the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _usage_error(command: str, message: str) -> NoReturn:
    """A bad argument found after parsing, said as argparse says its own."""
    _Parser(prog=f"mailpipe {command}").error(message)


def _domain(text: str) -> str:
    try:
        return parse_address(f"postmaster@{text}").domain
    except InvalidAddress:
        raise argparse.ArgumentTypeError(f"not a domain name: {text!r}") from None


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port (1-65535): {text!r}")
    return int(text)


def _seconds(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return int(text)


def _user(text: str) -> tuple[str, str]:
    address, separator, password = text.partition(":")
    if not separator or not address or not password:
        raise argparse.ArgumentTypeError(f"expected ADDRESS:PASSWORD, not {text!r}")
    try:
        return str(parse_address(address)), password
    except InvalidAddress:
        raise argparse.ArgumentTypeError(f"not an address: {address!r}") from None


def _account(text: str) -> str:
    try:
        return str(parse_address(text))
    except InvalidAddress:
        raise argparse.ArgumentTypeError(f"not an address: {text!r}") from None


def _mx(text: str) -> tuple[str, str]:
    domain, separator, hop = text.partition("=")
    host, colon, port = hop.rpartition(":")
    if not separator or not domain or not colon or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected DOMAIN=HOST:PORT, not {text!r}")
    _port(port)
    if any(char.isspace() for char in host):
        raise argparse.ArgumentTypeError(f"not a host: {host!r}")
    return _domain(domain), hop


def password_problem(password: str, root: Path = ROOT) -> str | None:
    """What the user pool's password policy (template.yaml, as Cognito applies it) has
    against `password`; checked before anything is created, so a refusal leaves no half
    account behind."""
    policy = load_template(root / "template.yaml")["Resources"]["UserPool"]["Properties"][
        "Policies"]["PasswordPolicy"]
    minimum = int(policy.get("MinimumLength", 8))
    rules = [
        (len(password) < minimum, f"shorter than {minimum} characters"),
        (policy.get("RequireLowercase") is True and not any(c.islower() for c in password),
         "without a lower-case letter"),
        (policy.get("RequireUppercase") is True and not any(c.isupper() for c in password),
         "without an upper-case letter"),
        (policy.get("RequireNumbers") is True and not any(c.isdigit() for c in password),
         "without a digit"),
        (policy.get("RequireSymbols") is True
         and not any(c in string.punctuation for c in password), "without a symbol"),
    ]
    problems = [text for broken, text in rules if broken]
    return f"the password policy refuses a password {' and '.join(problems)}" \
        if problems else None


def _writable(state_dir: Path) -> str | None:
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=state_dir):
            pass
    except OSError as exc:
        return f"cannot write the state dir {state_dir}: {exc.strerror or exc}"
    return None


def _duration(text: str) -> str:
    try:
        for part in text.split(","):
            parse_duration(part)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mailpipe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the whole system locally (moto as AWS)")
    up.add_argument("--domain", action="append", dest="domains", metavar="DOMAIN", type=_domain,
                    help="a hosted mail domain (repeatable; default example.test)")
    up.add_argument("--user", action="append", dest="users", type=_user, default=[],
                    metavar="ADDRESS:PASSWORD", help="an account to create (repeatable)")
    up.add_argument("--port-offset", type=int, default=0, metavar="N",
                    help="add N to every default port, for a stack beside another "
                    "(e.g. 1000: SMTP 3525, HTTP 9025, AWS 5566)")
    up.add_argument("--smtp-port", type=_port, help="MX port (default 2525)")
    up.add_argument("--submission-port", type=_port,
                    help="submission port (default 2587)")
    up.add_argument("--imap-port", type=_port,
                    help="IMAP port, STARTTLS (default 2143)")
    up.add_argument("--imaps-port", type=_port,
                    help="IMAP port, implicit TLS (default 2993)")
    up.add_argument("--http-port", type=_port, help="HTTP API port (default 8025)")
    up.add_argument("--aws-port", type=_port,
                    help="port of the embedded AWS, moto (default 4566)")
    up.add_argument("--hostname", type=_domain, help="the name the SMTP edge greets with")
    up.add_argument("--mx", action="append", dest="mx", type=_mx, default=[],
                    metavar="DOMAIN=HOST:PORT",
                    help="deliver mail for DOMAIN to HOST:PORT instead of its MX (repeatable)")
    up.add_argument("--retry-schedule", type=_duration, default="5m,10m,20m,40m,80m,160m,4h",
                    help="waits between delivery attempts, e.g. 2s,4s,8s (the last repeats)")
    up.add_argument("--give-up-after", type=_duration, default="5d",
                    help="how long deferred mail is retried before it bounces, e.g. 30s")
    up.add_argument("--inbound-retry-after", type=_seconds, default=180, metavar="SECONDS",
                    help="wait before a message that failed to be filed is tried again")
    up.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                    help="where the local stack keeps its TLS certificate (default .mailpipe)")
    dns_records.add_up_options(up, _domain)

    user = commands.add_parser("user", help="manage accounts")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser("add", help="add an account")
    add.add_argument("address")
    add.add_argument("--password", required=True)
    _add_stack_options(add)

    queue_admin.add_parser(commands, _add_stack_options)
    suppression_admin.add_parser(commands, _add_stack_options, _domain)

    views = commands.add_parser(
        "imap-views", help="stored messages' IMAP views: make those missing (messages "
        "stored before views, or of an older format); safe to run again or interrupt")
    views.add_argument("action", choices=["backfill"])
    views.add_argument("--account", type=_account, metavar="ADDRESS",
                       help="only this account's messages")
    _add_stack_options(views)
    dns_records.add_command(commands, _add_stack_options, _domain)
    schedule_admin.add_parser(commands, _add_stack_options)

    webmail = commands.add_parser(
        "webmail", help="put the webmail's files in a deployed stack's webmail bucket")
    webmail.add_argument("action", choices=["publish"])
    _add_stack_options(webmail)
    return parser


class CommandFailed(Exception):
    """Said in one line on stderr; the command ends with status 1."""


def _target(stack: str | None, aws_port: int, state_dir: Path
            ) -> tuple[dict[str, str], Any]:
    """The stack's outputs and a boto3 session that reaches it."""
    if stack:
        session = boto3.session.Session()
        try:
            outputs = {
                output["OutputKey"]: output["OutputValue"]
                for output in session.client("cloudformation").describe_stacks(
                    StackName=stack)["Stacks"][0].get("Outputs", [])
            }
        except (BotoCoreError, ClientError) as exc:
            raise CommandFailed(f"cannot read stack {stack}: {exc}") from None
        return outputs, lambda service: session.client(service)
    state = outputs_file(state_dir, aws_port)
    if not state.exists():
        raise CommandFailed(f"no local stack on AWS port {aws_port} "
                            "(is `mailpipe up` running?)")
    session = local_session()
    endpoint = f"http://127.0.0.1:{aws_port}"
    return json.loads(state.read_text()), lambda service: session.client(
        service, endpoint_url=endpoint)


def _add_stack_options(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--aws-port", type=_port,
                        help="the running local stack's AWS port (default 4566)")
    target.add_argument("--port-offset", type=int, default=0, metavar="N",
                        help="the running local stack's --port-offset (its AWS port 4566+N)")
    target.add_argument("--stack", help="a deployed stack's name (uses your AWS credentials)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                        help="the local stack's --state-dir (default .mailpipe)")


def _ports(arguments: argparse.Namespace, names: Sequence[str]) -> dict[str, int]:
    """Each port as given, else its default plus --port-offset."""
    offset: int = arguments.port_offset
    ports = {}
    for name in names:
        port = getattr(arguments, name)
        if port is None:
            port = DEFAULT_PORTS[name] + offset
            if not 1 <= port <= 65535:
                option = "--" + name.replace("_", "-")
                _usage_error(arguments.command,
                             f"--port-offset {offset} puts {option} at {port}, outside 1-65535")
        ports[name] = port
    return ports


def _up(arguments: argparse.Namespace) -> int:
    ports = _ports(arguments, list(DEFAULT_PORTS))
    twice = {port for port in ports.values() if list(ports.values()).count(port) > 1}
    if twice:
        _usage_error("up", f"port {min(twice)} is given to two services")
    domains = arguments.domains or ["example.test"]
    for address, password in arguments.users:
        if address.partition("@")[2] not in domains:
            _usage_error("up", f"--user {address}: {address.partition('@')[2]} is not one of the "
                         f"--domain values ({', '.join(domains)})")
        if problem := password_problem(password):
            _usage_error("up", f"--user {address}: {problem}")
    if problem := _writable(arguments.state_dir):
        raise CommandFailed(problem)
    run(StackOptions(
        domains=domains,
        users=arguments.users,
        smtp_port=ports["smtp_port"],
        submission_port=ports["submission_port"],
        imap_port=ports["imap_port"],
        imaps_port=ports["imaps_port"],
        http_port=ports["http_port"],
        aws_port=ports["aws_port"],
        hostname=arguments.hostname,
        state_dir=arguments.state_dir,
        mx=dict(arguments.mx),
        retry_schedule=arguments.retry_schedule,
        give_up_after=arguments.give_up_after,
        inbound_retry_after=arguments.inbound_retry_after,
        dns=arguments.dns,
        dnsbl=arguments.dnsbl,
    ))
    return 0


class _Outputs(dict[str, str]):
    """A stack's outputs: one a command needs and the stack lacks (deployed by an older
    template) is said in one line, not a KeyError's traceback."""

    def __missing__(self, key: str) -> str:
        raise CommandFailed(f"the stack has no {key} output: deploy it again with this "
                            "version's template")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        return _command(arguments)
    except (CommandFailed, suppression_admin.SuppressionCommandFailed) as exc:
        print(f"mailpipe: {exc}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:
        # No credentials, no region, an endpoint that does not answer, a refusal.
        print(f"mailpipe: {exc}", file=sys.stderr)
        return 1


def _command(arguments: argparse.Namespace) -> int:
    if arguments.command == "up":
        return _up(arguments)
    aws_port = _ports(arguments, ["aws_port"])["aws_port"]
    if arguments.command == "user" and (problem := password_problem(arguments.password)):
        _usage_error("user add", f"--password: {problem}")
    found, client = _target(arguments.stack, aws_port, arguments.state_dir)
    outputs = _Outputs(found)
    if arguments.command == "queue":
        print("\n".join(queue_admin.run(arguments, outputs, client)))
        return 0
    if arguments.command == "dns":
        return dns_records.run(arguments, outputs, client)
    if arguments.command == "schedule":
        return schedule_admin.run(arguments, outputs, client)
    if arguments.command == "suppression":
        for line in suppression_admin.run(arguments, outputs, client):
            print(line)
        return 0
    if arguments.command == "imap-views":
        return _backfill_views(arguments.account, outputs, client)
    if arguments.command == "webmail":
        if "WebmailBucketName" not in outputs:
            raise CommandFailed("this stack has no webmail bucket")
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


def _backfill_views(account: str | None, outputs: dict[str, str], client: Any) -> int:
    from mailcore.adapters.aws.mailboxes.backfill import BackfillCounts, ImapViewBackfill

    backfill = ImapViewBackfill(client("dynamodb"), outputs["MailboxTableName"], client("s3"),
                                outputs["MessageBucketName"])
    counts = BackfillCounts()

    def progress(now: BackfillCounts) -> None:
        nonlocal counts
        counts = now

    try:
        counts = backfill.run(account, progress)
    except StorageUnavailable as exc:
        raise CommandFailed(f"imap-views backfill stopped ({exc}: {exc.__cause__}) after "
                            f"{counts.line()}; run it again to go on") from None
    except KeyboardInterrupt:
        print(f"mailpipe: imap-views backfill interrupted after {counts.line()}; run it "
              "again to go on", file=sys.stderr)
        return 130
    print(f"imap views: {counts.line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
