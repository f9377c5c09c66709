"""IMAP cannot take mail reception down (issue 25, item 7): under `mailpipe up`, as in the
ECS task, IMAP is a process of its own. Whatever happens to it (frozen with SIGSTOP,
killed, terminated), port 25's stand-in answers EHLO and accepts mail, and a dead IMAP
process is started again."""

from __future__ import annotations

import imaplib
import json
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailpipe.local.launcher import StackProcess, free_ports, start_stack
from mailpipe.local.stack import ROOT, processes_file
from mailpipe.local.template import load_template
from tests.e2e.api_client import ApiClient, wait_until

pytestmark = pytest.mark.e2e
BOB, PASSWORD = "bob@hamburger.edu", "bob-password"


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    stack = start_stack(["hamburger.edu"], {BOB: PASSWORD})
    yield stack
    stack.stop()


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    return inodes


def _listener_pid(port: int) -> int:
    """The pid of the process that listens on `port`, whichever it is."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                return int(entry.name)
        except OSError:
            continue  # gone meanwhile, or not ours
    raise AssertionError(f"nobody listens on port {port}")


def _recorded_pids(stack: StackProcess) -> dict[str, int]:
    return dict(json.loads(processes_file(stack.state_dir, stack.aws_port).read_text()))


def _smtp_accepts(stack: StackProcess, subject: str) -> None:
    """EHLO answered and a message accepted on the MX port, within a short timeout."""
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=10) as client:
        code, _ = client.ehlo("crepes.fr")
        assert code == 250
        refused = client.sendmail("alice@crepes.fr", [BOB],
                                  f"From: alice@crepes.fr\r\nTo: {BOB}\r\n"
                                  f"Subject: {subject}\r\n\r\nhello\r\n".encode())
        assert refused == {}


def _imap_greeting(stack: StackProcess, timeout: float) -> bytes | None:
    """The STARTTLS port's greeting, None when none comes within `timeout`."""
    try:
        with socket.create_connection(("127.0.0.1", stack.imap_port), timeout=timeout) as sock:
            return sock.recv(200)
    except OSError:
        return None


def _imap_subjects(stack: StackProcess) -> list[str]:
    context = ssl.create_default_context(cafile=str(stack.state_dir / "tls" / "cert.pem"))
    context.check_hostname = False
    with imaplib.IMAP4_SSL("127.0.0.1", stack.imaps_port, ssl_context=context,
                           timeout=15) as client:
        client.login(BOB, PASSWORD)
        client.select("INBOX")
        _, fetched = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        return [part[1].decode().strip().removeprefix("Subject: ")
                for part in fetched if isinstance(part, tuple)]


def _filed(stack: StackProcess, subject: str) -> None:
    api = ApiClient(stack, BOB, PASSWORD)
    wait_until(lambda: any(message["subject"] == subject for message in api.messages()),
               30, what=f"{subject!r} filed in the Inbox")


def test_smtp_and_imap_are_separate_processes_named_in_the_log_and_state_file(
        stack: StackProcess) -> None:
    smtp, imap = _listener_pid(stack.smtp_port), _listener_pid(stack.imap_port)
    assert smtp != imap
    assert _listener_pid(stack.submission_port) == smtp
    assert _listener_pid(stack.imaps_port) == imap
    assert _recorded_pids(stack) == {"edge_smtp": smtp, "edge_imap": imap}
    output = "".join(stack.output)
    # Each process's lines carry its name.
    assert re.search(r" edge_smtp +edge listening .*role=mx", output)
    assert re.search(r" edge_imap +imap listening .*role=imaps", output)
    assert f"edge_imap started (pid {imap})" in output


def test_a_frozen_imap_process_leaves_smtp_answering_and_accepting_mail(
        stack: StackProcess) -> None:
    imap = _listener_pid(stack.imap_port)
    os.kill(imap, signal.SIGSTOP)
    try:
        # IMAP is really frozen: the kernel accepts the connection, nobody greets.
        assert _imap_greeting(stack, timeout=2) is None
        _smtp_accepts(stack, "while IMAP is frozen")
        with smtplib.SMTP("127.0.0.1", stack.submission_port, timeout=10) as client:
            assert client.ehlo("client")[0] == 250
        _filed(stack, "while IMAP is frozen")
    finally:
        os.kill(imap, signal.SIGCONT)
    greeting = _imap_greeting(stack, timeout=10)
    assert greeting is not None and greeting.startswith(b"* OK")
    assert "while IMAP is frozen" in _imap_subjects(stack)
    assert _listener_pid(stack.imap_port) == imap  # a frozen process is not a dead one


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_dead_imap_process_leaves_smtp_accepting_and_is_started_again(
        stack: StackProcess, signum: int) -> None:
    smtp, imap = _listener_pid(stack.smtp_port), _listener_pid(stack.imap_port)
    restarts = sum("the IMAP process exited" in line for line in stack.output)
    os.kill(imap, signum)
    subject = f"after IMAP got {signal.Signals(signum).name}"
    # At once, before any restart: mail is still received.
    _smtp_accepts(stack, subject)
    wait_until(lambda: sum("the IMAP process exited" in line for line in stack.output)
               > restarts, 15, interval=0.1, what="the IMAP restart in the stack's output")
    restarted = wait_until(lambda: _recorded_pids(stack)["edge_imap"] != imap
                           and _recorded_pids(stack)["edge_imap"], 30,
                           what="the new IMAP pid in the state file")
    assert wait_until(lambda: subject in _imap_subjects(stack), 30,
                      what="the message read over the restarted IMAP")
    assert _listener_pid(stack.imaps_port) == restarted
    # SMTP was never touched, and the stack is still up.
    assert _listener_pid(stack.smtp_port) == smtp == _recorded_pids(stack)["edge_smtp"]
    assert stack.process.poll() is None


def _container(name: str) -> dict[str, Any]:
    task = load_template(ROOT / "template.yaml")["Resources"]["EdgeTaskDefinition"]
    [definition] = [entry for entry in task["Properties"]["ContainerDefinitions"]
                    if entry["Name"] == name]
    return definition


def _health_command(container: str) -> list[str]:
    """The container's health check from the template, as ECS runs it in the container."""
    kind, program, *arguments = _container(container)["HealthCheck"]["Command"]
    assert (kind, program) == ("CMD", "python")
    return [sys.executable, *arguments]


def _entry_command(container: str) -> list[str]:
    """The container's command from the template (`python -m edge smtp|imap`)."""
    program, *arguments = _container(container)["Command"]
    assert program == "python"
    return [sys.executable, *arguments]


@pytest.mark.parametrize(("container", "module", "variable"), [
    ("imap", "edge_imap", "MAILPIPE_IMAP_HEALTH_PORT"),
    ("edge", "edge_smtp", "MAILPIPE_HEALTH_PORT")])
def test_each_entry_point_passes_its_containers_health_check_on_its_own_port(
        stack: StackProcess, container: str, module: str, variable: str) -> None:
    """The template's commands, `python -m edge imap` and `python -m edge smtp`, with the
    environment the stack gave its own process, but the image's health ports (8081 and
    8080, which only the task's network namespace keeps apart, so this runs one at a time)
    and ports of their own."""
    pid = _recorded_pids(stack)[module]
    environment = dict(line.split("=", 1) for line in
                       Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in line)
    ports = free_ports(4)
    environment.update({name: str(port) for name, port in zip(
        ("MAILPIPE_SMTP_PORT", "MAILPIPE_SUBMISSION_PORT", "MAILPIPE_IMAP_PORT",
         "MAILPIPE_IMAPS_PORT"), ports, strict=True)})
    environment.update(MAILPIPE_HEALTH_PORT="off", MAILPIPE_IMAP_HEALTH_PORT="off")
    environment[variable] = {"imap": "8081", "edge": "8080"}[container]
    check = _health_command(container)
    assert subprocess.run(check, capture_output=True, timeout=30).returncode != 0
    process = subprocess.Popen(_entry_command(container), env=environment,
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: subprocess.run(check, capture_output=True,
                                          timeout=30).returncode == 0,
                   30, interval=0.5, what=f"{module}'s health check passing")
        # Only its own protocol: the other process's ports stay closed.
        own, other = (ports[2:], ports[:2]) if module == "edge_imap" else (ports[:2], ports[2:])
        for port in own:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        for port in other:
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=5)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=40) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_a_killed_stack_leaves_no_edge_process_holding_its_ports() -> None:
    """`mailpipe up` ended with SIGKILL cannot stop its children: they end with it."""
    stack = start_stack(["hamburger.edu"], {BOB: PASSWORD})
    try:
        pids = _recorded_pids(stack)
        stack.process.kill()
        stack.process.wait(timeout=10)
        for pid in pids.values():
            wait_until(lambda pid=pid: not Path(f"/proc/{pid}").exists()
                       or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3],
                       40, interval=0.2, what=f"process {pid} ended")
        for port in (stack.smtp_port, stack.imap_port, stack.imaps_port):
            wait_until(lambda port=port: not _listening_inodes(port), 10,
                       what=f"port {port} free")
    finally:
        stack.stop()
