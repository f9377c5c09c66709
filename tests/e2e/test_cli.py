"""The `mailpipe` command as a user types it (issue 25, item 15): two stacks side by side
with one option, the README's example as written, and every bad argument said in one line
on stderr (status 2 for usage, 1 for the environment), never a traceback."""

from __future__ import annotations

import os
import random
import shlex
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailpipe.local.launcher import (
    MAILPIPE,
    StackProcess,
    free_ports,
    start_up,
    start_with_offset,
)
from mailpipe.local.stack import DEFAULT_PORTS, ROOT
from tests.e2e.api_client import ApiClient, wait_until

pytestmark = pytest.mark.e2e


def _mailpipe(*arguments: str, environment: dict[str, str] | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MAILPIPE, *arguments], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=environment or dict(os.environ))


def _free_offset(*taken: int) -> int:
    """An offset whose six ports are all free now (and none of `taken`)."""
    for _ in range(200):
        offset = random.randrange(20_000, 30_000)
        ports = [default + offset for default in DEFAULT_PORTS.values()]
        if set(ports) & set(taken):
            continue
        try:
            probes = []
            for port in ports:
                probe = socket.socket()
                probes.append(probe)
                probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
        return offset
    raise AssertionError("no free offset")


def _explicit_ports(smtp: int) -> list[str]:
    """Free ports for everything but the MX port, which the caller chooses."""
    http, aws, submission, imap, imaps = free_ports(5)
    return ["--smtp-port", str(smtp), "--http-port", str(http), "--aws-port", str(aws),
            "--submission-port", str(submission), "--imap-port", str(imap),
            "--imaps-port", str(imaps)]


def _assert_one_line_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mailpipe"), lines
    assert result.returncode == status, (result.returncode, result.stderr)
    return lines[0]


USAGE_ERRORS = {
    # argparse's own
    "no command": ([], "required"),
    "unknown option": (["up", "--bogus"], "unrecognized arguments: --bogus"),
    "unknown command": (["down"], "invalid choice"),
    "port not a number": (["up", "--smtp-port", "abc"], "not a port"),
    "port out of range": (["up", "--imap-port", "70000"], "not a port"),
    "port zero": (["up", "--http-port", "0"], "not a port"),
    "offset out of range": (["up", "--port-offset", "70000"], "outside 1-65535"),
    "offset below zero": (["up", "--port-offset", "-5000"], "outside 1-65535"),
    "same port twice": (["up", "--smtp-port", "3000", "--imap-port", "3000"],
                        "port 3000 is given to two services"),
    "retry schedule": (["up", "--retry-schedule", "soon"], "--retry-schedule"),
    "inbound retry negative": (["up", "--inbound-retry-after", "-5"], "not a number"),
    # the values of --user, --domain, --mx, --hostname
    "user without password": (["up", "--user", "bob@example.test"], "ADDRESS:PASSWORD"),
    "user not an address": (["up", "--user", "bob:password123"], "not an address"),
    "user with routing": (["up", "--user", "bob%x@example.test:password123"],
                          "not an address"),
    "user of another domain": (["up", "--user", "bob@other.test:password123"],
                               "other.test is not one of the --domain values"),
    "password too short (the README's)": (["up", "--user", "bob@example.test:pw-bob"],
                                          "password policy"),
    "password empty after colon": (["up", "--user", "bob@example.test:"], "ADDRESS:PASSWORD"),
    "domain with a space": (["up", "--domain", "bad domain"], "not a domain name"),
    "domain with an at": (["up", "--domain", "a@b.test"], "not a domain name"),
    "domain empty": (["up", "--domain", ""], "not a domain name"),
    "hostname": (["up", "--hostname", "mx..example.test"], "not a domain name"),
    "mx without a port": (["up", "--mx", "crepes.fr=127.0.0.1"], "DOMAIN=HOST:PORT"),
    "mx without a domain": (["up", "--mx", "=127.0.0.1:25"], "DOMAIN=HOST:PORT"),
    "mx port out of range": (["up", "--mx", "crepes.fr=127.0.0.1:99999"], "not a port"),
    "mx bad domain": (["up", "--mx", "cr pes.fr=127.0.0.1:25"], "not a domain name"),
    "user add short password": (["user", "add", "bob@example.test", "--password", "short"],
                                "password policy"),
    "user add without password": (["user", "add", "bob@example.test"], "--password"),
    "user add port and stack": (["user", "add", "b@example.test", "--password", "password123",
                                 "--aws-port", "4566", "--stack", "x"], "not allowed with"),
    "queue unknown action": (["queue", "flush"], "invalid choice"),
    "webmail unknown action": (["webmail", "unpublish"], "invalid choice"),
}


@pytest.mark.parametrize("case", list(USAGE_ERRORS))
def test_a_bad_argument_is_one_line_on_stderr_and_status_2(case: str) -> None:
    arguments, said = USAGE_ERRORS[case]
    line = _assert_one_line_error(_mailpipe(*arguments), 2)
    assert said in line


def test_a_port_in_use_is_one_line_and_status_1(tmp_path: Path) -> None:
    # Given as the MX port, and reached by --port-offset as the AWS port (checked first).
    for arguments in (lambda port: _explicit_ports(port),
                      lambda port: ["--port-offset", str(port - DEFAULT_PORTS["aws_port"])]):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))  # an ephemeral port, above 32768 on Linux
            taken.listen()
            port = taken.getsockname()[1]
            result = _mailpipe("up", *arguments(port), "--state-dir", str(tmp_path))
        line = _assert_one_line_error(result, 1)
        assert f"port {port} on 127.0.0.1 is in use" in line


def test_a_state_dir_that_cannot_be_written_is_one_line_and_status_1(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    for state_dir in (a_file, a_file / "below", Path("/proc/mailpipe")):
        port = free_ports(1)[0]
        result = _mailpipe("up", *_explicit_ports(port), "--state-dir", str(state_dir))
        line = _assert_one_line_error(result, 1)
        assert f"cannot write the state dir {state_dir}" in line


def test_no_running_local_stack_is_one_line_and_status_1(tmp_path: Path) -> None:
    for arguments in (["user", "add", "bob@example.test", "--password", "password123"],
                      ["queue"], ["queue", "retry", "--port-offset", "7"], ["webmail", "publish"]):
        result = _mailpipe(*arguments, "--state-dir", str(tmp_path))
        assert "no local stack on AWS port" in _assert_one_line_error(result, 1)


def test_stack_without_aws_credentials_is_one_line_and_status_1(tmp_path: Path) -> None:
    """No credentials anywhere: none in the environment, no files, no instance metadata."""
    bare = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    bare.update(AWS_CONFIG_FILE=str(tmp_path / "none"),
                AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
                AWS_EC2_METADATA_DISABLED="true", HOME=str(tmp_path))
    for region in ({}, {"AWS_DEFAULT_REGION": "us-east-1"}):
        for arguments in (["queue", "--stack", "mailpipe"],
                          ["user", "add", "bob@example.test", "--password", "password123",
                           "--stack", "mailpipe"],
                          ["webmail", "publish", "--stack", "mailpipe"]):
            result = _mailpipe(*arguments, environment={**bare, **region}, timeout=60)
            assert "cannot read stack mailpipe" in _assert_one_line_error(result, 1)


@pytest.fixture
def two_stacks_by_offset(tmp_path: Path) -> Iterator[tuple[StackProcess, StackProcess]]:
    crepes = _free_offset()
    hamburger = _free_offset(*(port + crepes for port in DEFAULT_PORTS.values()))
    first = start_with_offset(crepes, [
        "--domain", "crepes.fr", "--user", "alice@crepes.fr:alice-password",
        "--mx", f"hamburger.edu=127.0.0.1:{2525 + hamburger}"], state_dir=tmp_path)
    try:
        second = start_with_offset(hamburger, [
            "--domain", "hamburger.edu", "--user", "bob@hamburger.edu:bob-password",
            "--mx", f"crepes.fr=127.0.0.1:{2525 + crepes}"], state_dir=tmp_path)
    except BaseException:
        first.stop()
        raise
    yield first, second
    assert second.stop() == 0
    assert first.stop() == 0


def _submit(stack: StackProcess, sender: str, password: str, recipient: str,
            subject: str) -> None:
    context = ssl.create_default_context(cafile=str(stack.state_dir / "tls" / "cert.pem"))
    context.check_hostname = False
    with smtplib.SMTP("127.0.0.1", stack.submission_port, timeout=30) as client:
        client.starttls(context=context)
        client.login(sender, password)
        assert client.sendmail(sender, [recipient], (
            f"From: {sender}\r\nTo: {recipient}\r\nSubject: {subject}\r\n\r\nhi\r\n"
        ).encode()) == {}


def _arrives(stack: StackProcess, address: str, password: str, subject: str) -> None:
    api = ApiClient(stack, address, password)
    wait_until(lambda: any(message["subject"] == subject for message in api.messages()),
               60, interval=0.5, what=f"{subject!r} in {address}'s Inbox")


def test_two_stacks_side_by_side_with_one_option_each_take_mail_on_their_own_ports(
        two_stacks_by_offset: tuple[StackProcess, StackProcess]) -> None:
    crepes, hamburger = two_stacks_by_offset
    for stack in (crepes, hamburger):
        banner = "".join(stack.output)
        assert f"SMTP (MX)   127.0.0.1:{stack.smtp_port}" in banner
        assert f"127.0.0.1:{stack.imaps_port} (TLS)" in banner
        assert f"http://127.0.0.1:{stack.aws_port}" in banner
    # Each one's MX takes its own domain's mail, and refuses the other's.
    with smtplib.SMTP("127.0.0.1", hamburger.smtp_port, timeout=30) as client:
        assert client.sendmail("zoe@example.org", ["bob@hamburger.edu"],
                               b"Subject: to hamburger\r\n\r\nhi\r\n") == {}
    with smtplib.SMTP("127.0.0.1", crepes.smtp_port, timeout=30) as client:
        assert client.sendmail("zoe@example.org", ["alice@crepes.fr"],
                               b"Subject: to crepes\r\n\r\nhi\r\n") == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("zoe@example.org", ["bob@hamburger.edu"], b"Subject: x\r\n\r\n")
    _arrives(hamburger, "bob@hamburger.edu", "bob-password", "to hamburger")
    _arrives(crepes, "alice@crepes.fr", "alice-password", "to crepes")
    # And they exchange mail over real SMTP through their --mx overrides.
    _submit(crepes, "alice@crepes.fr", "alice-password", "bob@hamburger.edu", "from alice")
    _arrives(hamburger, "bob@hamburger.edu", "bob-password", "from alice")
    # `mailpipe user add` finds the second stack by the same one option.
    offset = hamburger.aws_port - DEFAULT_PORTS["aws_port"]
    added = _mailpipe("user", "add", "carol@hamburger.edu", "--password", "carol-password",
                      "--port-offset", str(offset), "--state-dir", str(hamburger.state_dir))
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "account carol@hamburger.edu added"


def _readme_two_stack_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    start = text.index("so two stacks can exchange mail over real SMTP on loopback")
    block = text[text.index("```sh\n", start) + 6:text.index("```", text.index("```sh\n",
                                                                              start) + 6)]
    commands = [shlex.split(line) for line in block.replace("\\\n", " ").splitlines()
                if line.strip()]
    assert len(commands) == 2 and all(command[:2] == ["mailpipe", "up"]
                                      for command in commands), commands
    return commands


def test_the_readmes_two_stack_example_runs_as_written() -> None:
    commands = _readme_two_stack_commands()
    busy = []
    for port in sorted({default + offset for default in DEFAULT_PORTS.values()
                        for offset in (0, 1000)}):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                busy.append(port)
    if busy:
        pytest.skip(f"the README's ports are in use here: {busy}")
    stacks: list[StackProcess] = []
    try:
        for command in commands:
            stacks.append(start_up(command[2:]))
        crepes, hamburger = stacks
        # The passwords of the example are the policy's; alice writes to bob.
        _submit(crepes, "alice@crepes.fr", _password(commands[0]), "bob@hamburger.edu",
                "README example")
        _arrives(hamburger, "bob@hamburger.edu", _password(commands[1]), "README example")
    finally:
        for stack in reversed(stacks):
            stack.stop()


def _password(command: list[str]) -> str:
    return command[command.index("--user") + 1].partition(":")[2]
