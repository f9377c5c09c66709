"""`mailpipe up`: the whole system on one machine, with moto as its AWS."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import yaml

from mailcore.adapters.aws.cognito_directory import CognitoAccountDirectory
from mailcore.authentication.signing_keys import document_of
from mailcore.errors import MailError
from mailcore.services.accounts import add_account
from mailpipe.local import logs
from mailpipe.local.dkim_keys import keep_local_keys, keys_file
from mailpipe.local.edge_process import EdgeProcess
from mailpipe.local.event_sources import SqsPoller
from mailpipe.local.functions import LocalFunction
from mailpipe.local.gateway import Gateway, JwtVerifier
from mailpipe.local.metering import Meter, MeteredMotoServer
from mailpipe.local.provision import Provisioned, provision
from mailpipe.local.schedules import ScheduleTimer, schedules_file, write_schedules
from mailpipe.webmail import WebmailSite

log = logging.getLogger("mailpipe.local")
REGION = "us-east-1"
STACK_NAME = "mailpipe-local"
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = ROOT / ".mailpipe"
OPENAPI_PATH = "/v1/openapi.json"


def openapi_json(root: Path) -> bytes:
    """openapi.yaml, the API's one description, as the JSON that tools fetch."""
    return json.dumps(yaml.safe_load((root / "openapi.yaml").read_text())).encode()


# The local defaults; `mailpipe up --port-offset N` adds N to each, so a second stack
# beside the first needs that one option (`--port-offset 1000`: 3525, 3587, 3143, 3993,
# 9025, 5566).
DEFAULT_PORTS = {"smtp_port": 2525, "submission_port": 2587, "imap_port": 2143,
                 "imaps_port": 2993, "http_port": 8025, "aws_port": 4566}


@dataclass
class StackOptions:
    domains: list[str] = field(default_factory=lambda: ["example.test"])
    users: list[tuple[str, str]] = field(default_factory=list)
    smtp_port: int = 2525
    submission_port: int = 2587
    imap_port: int = 2143
    imaps_port: int = 2993
    http_port: int = 8025
    aws_port: int = 4566
    host: str = "127.0.0.1"
    root: Path = ROOT
    hostname: str | None = None
    state_dir: Path = DEFAULT_STATE_DIR
    mx: dict[str, str] = field(default_factory=dict)  # domain -> host:port, bypassing DNS
    retry_schedule: str = "5m,10m,20m,40m,80m,160m,4h"
    give_up_after: str = "5d"
    inbound_retry_after: int = 180
    dns: str = ""  # HOST:PORT of the DNS server every lookup asks; "" for the system's
    dnsbl: list[str] = field(default_factory=list)  # blocklist zones the MX edge asks


class PortInUse(RuntimeError):
    pass


def _ensure_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        # As the real listeners do: connections lingering in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"port {port} on {host} is in use (another mailpipe up? "
                                "--port-offset N moves every port)") from exc
            raise PortInUse(f"cannot listen on port {port} on {host}: "
                            f"{exc.strerror or exc}") from exc


def aws_environment(endpoint: str) -> dict[str, str]:
    """What every local process needs to reach moto instead of AWS."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def outputs_file(state_dir: Path, aws_port: int) -> Path:
    return state_dir / f"stack-{aws_port}.json"


def local_session() -> boto3.session.Session:
    """A boto3 session for moto: any credentials are accepted there."""
    environment = aws_environment("")
    return boto3.session.Session(
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )


def local_edge_overrides(options: StackOptions) -> dict[str, str]:
    """What differs from the template's SMTP edge container when it runs here as a process.

    In AWS the load balancer sits in front (PROXY v2, fixed container ports, health checks)
    and the TLS pair comes from Secrets Manager; here clients connect directly to the ports
    chosen on the command line.
    """
    return {
        "MAILPIPE_SMTP_HOST": options.host,
        "MAILPIPE_SMTP_PORT": str(options.smtp_port),
        "MAILPIPE_SUBMISSION_PORT": str(options.submission_port),
        "MAILPIPE_HEALTH_PORT": "off",
        **_local_container_overrides(options),
    }


def local_imap_overrides(options: StackOptions) -> dict[str, str]:
    """The same for the IMAP container, the other process of the edge's task."""
    return {
        "MAILPIPE_IMAP_HOST": options.host,
        "MAILPIPE_IMAP_PORT": str(options.imap_port),
        "MAILPIPE_IMAPS_PORT": str(options.imaps_port),
        "MAILPIPE_IMAP_HEALTH_PORT": "off",
        **_local_container_overrides(options),
    }


def _local_container_overrides(options: StackOptions) -> dict[str, str]:
    return {
        "MAILPIPE_PROXY_PROTOCOL": "false",
        # The local runtime makes a self-signed pair on first start (under a lock: both
        # processes may ask at once).
        "MAILPIPE_TLS_SELF_SIGNED_DIR": str(options.state_dir / "tls"),
        "PYTHONPATH": str(options.root),
    }


def processes_file(state_dir: Path, aws_port: int) -> Path:
    """The pids of a running stack's edge processes, by name, kept current across restarts."""
    return state_dir / f"processes-{aws_port}.json"


def template_parameters(options: StackOptions) -> dict[str, str]:
    """The template's parameters for a local stack, from `mailpipe up`'s options."""
    return {
        "HostedDomains": ",".join(options.domains),
        "EdgeHostname": options.hostname or options.domains[0],
        # Locally the deliver function speaks to MX hosts itself (or to --mx overrides).
        "DeliveryMode": "direct",
        "MxOverrides": ",".join(f"{domain}={hop}" for domain, hop in options.mx.items()),
        "RetrySchedule": options.retry_schedule,
        "GiveUpAfter": options.give_up_after,
        "InboundRetryAfter": str(options.inbound_retry_after),
        "DnsServer": options.dns,
        "DnsblZones": ",".join(options.dnsbl),
    }


class LocalStack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.endpoint = f"http://{options.host}:{options.aws_port}"
        self._moto: MeteredMotoServer | None = None
        self.meter = Meter()  # what this stack asks of AWS, as AWS would bill it
        self._functions: dict[str, LocalFunction] = {}
        self._pollers: list[SqsPoller] = []
        self._timers: list[ScheduleTimer] = []
        self._gateway: Gateway | None = None
        self._edge: EdgeProcess | None = None  # SMTP: MX and submission
        self._imap: EdgeProcess | None = None
        self._imap_retry_at = 0.0
        self.provisioned: Provisioned | None = None

    def start(self) -> None:
        options = self.options
        for port in (options.aws_port, options.http_port, options.smtp_port,
                     options.submission_port, options.imap_port, options.imaps_port):
            _ensure_free(options.host, port)
        self._moto = MeteredMotoServer(self.meter, options.host, options.aws_port)
        self._moto.start()
        session = local_session()
        self.provisioned = provision(options.root, STACK_NAME, template_parameters(options),
                                     session, self.endpoint, REGION)
        outputs = self.provisioned.outputs
        # What `mailpipe user add` and `mailpipe queue` read to find this stack.
        options.state_dir.mkdir(parents=True, exist_ok=True)
        outputs_file(options.state_dir, options.aws_port).write_text(json.dumps(outputs))
        # Before anything that signs starts: the same keys at every start.
        signing_keys = keep_local_keys(
            options.state_dir, options.domains,
            session.client("secretsmanager", endpoint_url=self.endpoint),
            outputs["DkimKeysSecretArn"])
        directory = CognitoAccountDirectory(
            session.client("cognito-idp", endpoint_url=self.endpoint),
            outputs["UserPoolId"], outputs["UserPoolClientId"])
        hosted = frozenset(domain.lower() for domain in options.domains)
        for address, password in options.users:
            add_account(address, password, hosted, directory)

        environment = {**os.environ, **aws_environment(self.endpoint)}
        # The functions something here invokes: a custom resource's (the DKIM keys') is
        # called by CloudFormation at a deploy, and its work done above.
        scheduled = {source.function for source in self.provisioned.schedules}
        invoked = ({source.function for source in self.provisioned.queue_sources}
                   | {route.function for route in self.provisioned.routes} | scheduled)
        for logical_id, spec in self.provisioned.functions.items():
            if logical_id not in invoked:
                continue
            function = LocalFunction(spec, environment, self._function_log, meter=self.meter)
            if logical_id not in scheduled:  # which starts cold, as after a day in Lambda
                function.warm()
            self._functions[logical_id] = function
        sqs = session.client("sqs", endpoint_url=self.endpoint)
        for source in self.provisioned.queue_sources:
            # Lambda polls an SQS source with several concurrent batches.
            for _ in range(2):
                poller = SqsPoller(source, self._functions[source.function], sqs, REGION)
                poller.start()
                self._pollers.append(poller)
        # What `mailpipe schedule run` invokes now; the timers invoke it on the schedule.
        write_schedules(schedules_file(options.state_dir, options.aws_port),
                        self.provisioned.schedules, self.provisioned.functions)
        for schedule in self.provisioned.schedules:
            timer = ScheduleTimer(schedule, self._functions[schedule.function], REGION)
            timer.start()
            self._timers.append(timer)
        self._gateway = Gateway(options.host, options.http_port, self.provisioned.routes,
                                self._functions, JwtVerifier(self.endpoint),
                                documents={OPENAPI_PATH: openapi_json(options.root)},
                                # Uploads are POSTed straight to the bucket: moto here.
                                site=WebmailSite(options.root / "webmail",
                                                 connect=(self.endpoint,)))
        self._gateway.start()
        containers = self.provisioned.containers
        self._edge = EdgeProcess(
            "edge_smtp", "smtp",
            {**environment, **containers["edge"].environment, **local_edge_overrides(options),
             # What ECS puts there from the container's Secrets when the task starts.
             "MAILPIPE_DKIM_KEYS": document_of(signing_keys)},
            options.host, [options.smtp_port, options.submission_port], options.root)
        self._imap = EdgeProcess(
            "edge_imap", "imap",
            {**environment, **containers["imap"].environment, **local_imap_overrides(options)},
            options.host, [options.imap_port, options.imaps_port], options.root)
        for process in (self._edge, self._imap):
            process.start()
        for process in (self._edge, self._imap):
            process.wait_listening()
        self._write_pids()

    def _write_pids(self) -> None:
        pids = {process.name: process.pid for process in (self._edge, self._imap)
                if process is not None}
        state = processes_file(self.options.state_dir, self.options.aws_port)
        # Written whole then renamed: a reader never sees half a file.
        partial = state.with_suffix(".partial")
        partial.write_text(json.dumps(pids))
        partial.replace(state)

    def failed_part(self) -> str | None:
        """What part of the stack has ended on its own and cannot be started again, if one
        has. An edge process that ended is started again, as ECS starts the container again
        in AWS; None unless the SMTP edge's restart fails. IMAP's failing restart is tried
        again a few seconds later, the stack left up: IMAP never takes mail reception down."""
        if self._edge is not None and (status := self._edge.exit_status()) is not None:
            log.error("the SMTP edge exited (status %s); starting it again", status)
            try:
                self._edge.start()
                self._edge.wait_listening()
            except RuntimeError as exc:
                return f"the SMTP edge exited and could not be started again: {exc}"
            self._write_pids()
        if (self._imap is not None and (status := self._imap.exit_status()) is not None
                and time.monotonic() >= self._imap_retry_at):
            log.error("the IMAP process exited (status %s); starting it again", status)
            try:
                self._imap.start()
                self._imap.wait_listening()
            except RuntimeError as exc:
                log.error("IMAP could not be started again (%s); trying again in 5 s", exc)
                self._imap_retry_at = time.monotonic() + 5
            self._write_pids()
        return None

    def banner(self) -> str:
        options = self.options
        users = ", ".join(address for address, _ in options.users) or "(none: mailpipe user add)"
        return "\n".join([
            "mailpipe is up",
            f"  SMTP (MX)   {options.host}:{options.smtp_port}",
            f"  submission  {options.host}:{options.submission_port} (STARTTLS, then AUTH)",
            f"  IMAP        {options.host}:{options.imap_port} (STARTTLS), "
            f"{options.host}:{options.imaps_port} (TLS)",
            f"  TLS cert    {options.state_dir / 'tls' / 'cert.pem'} (self-signed)",
            f"  DKIM keys   {keys_file(options.state_dir)} (kept: `mailpipe dns` prints "
            "their records)",
            f"  webmail     http://{options.host}:{options.http_port}/",
            f"  HTTP API    http://{options.host}:{options.http_port}/v1",
            f"  AWS (moto)  {self.endpoint}",
            f"  domains     {', '.join(options.domains)}",
            f"  accounts    {users}",
            f"  DNS         {options.dns or 'the system resolver'}",
            f"  blocklists  {', '.join(options.dnsbl) or '(none: mailpipe up --dnsbl ZONE)'}",
            "Ctrl-C stops it.",
        ])

    def _function_log(self, function: str, line: str) -> None:
        self.meter.logged(function, line)
        logs.emit(function, line)

    def stop(self) -> None:
        edge_processes = [process for process in (self._edge, self._imap) if process]
        for process in edge_processes:
            process.terminate()
        for process in edge_processes:
            # Longer than the SMTP edge's 30 s grace for transactions in flight.
            process.wait_stopped(timeout=35)
        if self._gateway is not None:
            self._gateway.stop()
        for poller in self._pollers:
            poller.stop()
        for timer in self._timers:
            timer.stop()
        for function in self._functions.values():
            function.stop()
        if self._moto is not None:
            self._moto.stop()
        # A stopped stack must not be found by `mailpipe user add` or `mailpipe queue`.
        outputs_file(self.options.state_dir, self.options.aws_port).unlink(missing_ok=True)
        processes_file(self.options.state_dir, self.options.aws_port).unlink(missing_ok=True)
        schedules_file(self.options.state_dir, self.options.aws_port).unlink(missing_ok=True)


def run(options: StackOptions) -> None:
    logs.route_runtime_logs()
    stack = LocalStack(options)
    # A plain flag: a handler that takes a lock (Event.set) can deadlock against the main
    # thread holding that lock when the signal lands (seen: a stack that ignored SIGTERM).
    stop_requested: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _: stop_requested.append(number))
    try:
        try:
            stack.start()
        except (PortInUse, RuntimeError) as exc:
            raise SystemExit(f"mailpipe: {exc}") from None
        except MailError as exc:  # an account the directory refused
            raise SystemExit(f"mailpipe: {exc.public}") from None
        print(stack.banner(), flush=True)
        failure = None
        while not stop_requested and failure is None:
            time.sleep(0.2)
            failure = stack.failed_part()
        print("mailpipe is stopping", flush=True)
    finally:
        stack.stop()
    print("mailpipe stopped", flush=True)
    if failure is None:
        # Everything is stopped and moto's state was never to be kept: the interpreter's
        # own teardown of that heap took 6 to 19 s of CPU after a junk-filter test (measured).
        logging.shutdown()
        sys.stderr.flush()
        os._exit(0)
    if failure is not None:
        # Said and ended, rather than left up with mail accepted that cannot be filed.
        raise SystemExit(f"mailpipe: {failure}")
