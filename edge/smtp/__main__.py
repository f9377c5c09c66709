"""Composition root of the SMTP edge container (MX and submission): configuration from the
environment. IMAP is another process and container (`python -m edge imap`), so nothing an
IMAP client does reaches this process's event loop, memory or thread pool."""

from __future__ import annotations

import asyncio
import os
import socket
from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools import Logger

from edge.smtp.accounts import CachingAccountDirectory
from edge.smtp.handler import EdgeHandler, SubmissionHandler
from edge.smtp.inbound import InboundVerifier, edge_dns
from edge.smtp.junk_signals import Blocklists, EdgeSignals
from edge.smtp.server import Edge, EdgeConfig, serve
from edge.tls import context_from_environ
from mailcore.ports import MessageWriter
from mailcore.wiring import aws_adapters, edge_writer

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "edge_smtp"))


def main() -> None:
    serve_smtp(edge_writer())


def serve_smtp(writer: MessageWriter) -> None:
    """The MX and submission listeners until SIGTERM, storing what they accept through
    `writer` (main's is the bucket's; a host of this process may wrap it)."""
    adapters = aws_adapters()
    config = EdgeConfig.from_environ(
        os.environ, os.environ.get("MAILPIPE_HOSTNAME") or socket.getfqdn())
    tls_context = context_from_environ(os.environ, config.hostname)
    if tls_context is None:
        logger.warning("no TLS certificate: STARTTLS and the submission port are off")
    # For the directory and the throttle, which block (botocore).
    executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="storage")
    directory = CachingAccountDirectory(adapters.directory)
    # What arrives on the MX port is verified (MAILPIPE_DNS, MAILPIPE_VERIFY); the
    # authserv-id of the Authentication-Results field is our host name.
    dns = edge_dns(os.environ)
    verifier = InboundVerifier.from_environ(os.environ, config.hostname, adapters.domains,
                                            dns=dns)
    # GTUBE and the blocklists (MAILPIPE_DNSBL) whether verification is on or off.
    signals = EdgeSignals(Blocklists(dns, config.dnsbl_zones))
    logger.info("junk signals at the MX port", gtube=True, dnsbl=list(signals.zones))
    mx = EdgeHandler(writer, directory, adapters.domains, config.hostname, executor,
                     config.max_recipients, verifier=verifier, signals=signals)
    submission = None
    if tls_context is not None:
        submission = SubmissionHandler(writer, directory, adapters.domains,
                                       config.hostname, executor, config.max_recipients,
                                       throttle=adapters.throttle,
                                       sending_limit=adapters.sending_limit,
                                       signing_keys=adapters.signing_keys,
                                       suppressions=adapters.suppressions)
    asyncio.run(serve(Edge(config, mx, submission, tls_context)))


if __name__ == "__main__":
    main()
