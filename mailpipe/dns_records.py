"""`mailpipe dns DOMAIN [--check]`: the DNS records a hosted domain publishes, as zone-file
lines ready to paste (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, the RFC 6186 service records),
and with --check which of them DNS does not serve yet, or serves otherwise."""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailcore.adapters.dns_resolver import DnsServer, sync_resolver
from mailcore.authentication.signing_keys import (
    KeysDocumentError,
    SigningKey,
    keys_for_domain,
    keys_of,
)

TTL = 3600
# The report mailbox DMARC and TLS-RPT name, the first that is an account at the domain
# (else the domain's first account): RFC 7489 §7.1 reports go to an address the owner reads.
REPORT_MAILBOXES = ("dmarc-reports", "postmaster")
# RFC 8461 §3.2: max_age in seconds; a week, so a policy change reaches senders soon.
STS_MAX_AGE = 604800
TXT_STRING = 255  # RFC 1035 §3.3: one character-string of a TXT record


@dataclass(frozen=True)
class Record:
    name: str  # the owner, without the final dot
    kind: str  # MX, TXT or SRV
    data: str  # MX and SRV: as a zone file writes it; TXT: the text itself, unquoted
    note: tuple[str, ...] = ()  # comment lines said above it

    def line(self) -> str:
        data = _quoted(self.data) if self.kind == "TXT" else self.data
        return f"{self.name}.\t{TTL}\tIN\t{self.kind}\t{data}"


def _quoted(text: str) -> str:
    """TXT data as quoted strings of at most 255 bytes each (a DKIM RSA key is ~400)."""
    data = text.encode()
    chunks = [data[i:i + TXT_STRING] for i in range(0, len(data), TXT_STRING)] or [b""]
    return " ".join('"' + chunk.decode().replace("\\", "\\\\").replace('"', '\\"') + '"'
                    for chunk in chunks)


def sts_policy(edge_hostname: str) -> str:
    """Our MTA-STS policy (RFC 8461 §3.2). `testing` asks senders to report TLS failures
    (TLS-RPT) without refusing to deliver; `enforce` once those reports are clean."""
    return (f"version: STSv1\r\nmode: testing\r\nmx: {edge_hostname}\r\n"
            f"max_age: {STS_MAX_AGE}\r\n")


def records(domain: str, edge_hostname: str, keys: list[SigningKey],
            report_address: str | None) -> list[Record]:
    edge = f"{edge_hostname}."
    policy = sts_policy(edge_hostname)
    # The id changes whenever the policy does, which is what tells senders to fetch it.
    policy_id = hashlib.sha256(policy.encode()).hexdigest()[:20]
    rua = f"; rua=mailto:{report_address}" if report_address else ""
    found = [
        Record(domain, "MX", f"10 {edge}", (
            f"Mail for {domain} goes to the edge, {edge_hostname} (its name must resolve to",
            "the edge: a CNAME to the EdgeLoadBalancerDnsName output, in AWS).")),
        Record(domain, "TXT", "v=spf1 mx -all", (
            "SPF: `mx` lets the edge's addresses send as this domain. Relaying through",
            "Amazon SES (DeliveryMode=relay): add include:amazonses.com before -all; direct",
            "delivery from a VPC: add ip4: with the NAT gateway's public address.")),
    ]
    found += [Record(key.record_name, "TXT", key.txt_record,
                     ("DKIM: the public keys of the current selectors (each message carries "
                      "both signatures).",) if number == 0 else ())
              for number, key in enumerate(keys)]
    found += [
        Record(f"_dmarc.{domain}", "TXT", f"v=DMARC1; p=quarantine{rua}", (
            "DMARC: p=quarantine to start; p=reject once the aggregate reports show only",
            "your own mail, passing. A mailing list that relays your users' posts unchanged",
            "(its envelope, their From) fails DMARC: under p=reject its readers' providers",
            "refuse those posts.")),
        Record(f"_mta-sts.{domain}", "TXT", f"v=STSv1; id={policy_id}", (
            f"MTA-STS: serve the policy below at https://mta-sts.{domain}/.well-known/mta-sts.txt",
            f"(text/plain, with a certificate valid for mta-sts.{domain}); mode: enforce once",
            "the TLS reports are clean, and then a new id in the record below:",
            *(f"  {line}" for line in policy.splitlines()))),
    ]
    if report_address:
        found.append(Record(f"_smtp._tls.{domain}", "TXT",
                            f"v=TLSRPTv1; rua=mailto:{report_address}",
                            ("TLS-RPT: where senders report failed TLS to the MX (RFC 8460).",)))
    found += [
        Record(f"_submission._tcp.{domain}", "SRV", f"0 1 587 {edge}", (
            "Mail clients find submission and IMAP from the address alone (RFC 6186);",
            f"Thunderbird's autoconfig: autoconfig.{domain}. CNAME <the API's custom domain>,",
            "which serves /mail/config-v1.1.xml.")),
        Record(f"_imaps._tcp.{domain}", "SRV", f"0 1 993 {edge}"),
        Record(f"_imap._tcp.{domain}", "SRV", f"10 1 143 {edge}"),
    ]
    return found


def zone_text(domain: str, found: list[Record]) -> str:
    lines = [f"; mailpipe dns {domain}: the records to publish"]
    for record in found:
        lines += [f"; {note}" for note in record.note]
        lines.append(record.line())
    return "\n".join(lines) + "\n"


# -- --check ------------------------------------------------------------------------------
class DnsUnanswered(Exception):
    """DNS gave no answer (timeout, SERVFAIL): nothing can be said about the record."""


def _published(resolver: Any, record: Record) -> list[str]:
    """What DNS serves at the record's name: the TXT strings of the same kind (the same v=
    tag: the domain's own name carries other TXT records, and SPF, DMARC, MTA-STS and
    TLS-RPT ignore the others), or the MX / SRV set as zone-file data."""
    import dns.exception
    import dns.resolver

    try:
        answer = resolver.resolve(record.name, record.kind, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as exc:
        raise DnsUnanswered(f"{record.name} {record.kind}: {type(exc).__name__}") from exc
    if record.kind != "TXT":
        return sorted(item.to_text().lower() for item in answer)
    texts = [b"".join(item.strings).decode("utf-8", "replace") for item in answer]
    if "._domainkey." in record.name:  # the selector's name is the key's alone; v= optional
        return texts
    return [text for text in texts if _version(text) == _version(record.data)]


def _version(text: str) -> str:
    return text.split(";", 1)[0].split(" ", 1)[0].replace(" ", "").lower()


def _tags(text: str) -> dict[str, str]:
    """A tag list (DKIM, DMARC, MTA-STS, TLS-RPT): whitespace around and inside values is
    insignificant (RFC 6376 §3.2)."""
    tags = {}
    for part in text.split(";"):
        name, _, value = part.partition("=")
        if name.strip():
            tags[name.strip().lower()] = "".join(value.split())
    return tags


def _agrees(expected: Record, published: str) -> bool:
    """Whether one published TXT record says what ours says."""
    if _version(expected.data) == "v=spf1":
        # Mechanisms may be added (include:amazonses.com); ours stay, and so does the end.
        ours, terms = expected.data.lower().split(), published.lower().split()
        return set(ours[:-1]) <= set(terms) and terms[-1:] == ours[-1:]
    theirs = _tags(published)
    if _version(expected.data) == "v=dkim1":
        theirs = {"v": "DKIM1", "k": "rsa", **theirs}  # RFC 6376 §3.6.1's defaults
    for name, value in _tags(expected.data).items():
        if name == "rua":  # ours among the report addresses
            if value.lower() not in theirs.get("rua", "").lower().split(","):
                return False
        elif name == "id":  # MTA-STS's: the owner's to change with the policy file
            if not theirs.get("id"):
                return False
        elif name == "p" and value == "quarantine":  # DMARC's: reject is stricter, as good
            if theirs.get("p") not in ("quarantine", "reject"):
                return False
        elif theirs.get(name) != value:
            return False
    return True


def check(found: list[Record], resolver: Any) -> list[str]:
    """One line per record DNS lacks or serves otherwise."""
    problems = []
    for record in found:
        published = _published(resolver, record)
        if not published:
            problems.append(f"missing    {record.name}. {record.kind}")
        elif (published != [record.data.lower()] if record.kind != "TXT"
              else len(published) > 1 or not _agrees(record, published[0])):
            problems.append(f"different  {record.name}. {record.kind}: published "
                            + " | ".join(published))
    return problems


# -- the command --------------------------------------------------------------------------
def dns_server_argument(text: str) -> str:
    """--dns HOST:PORT, as argparse's type: a resolver is asked by its address."""
    try:
        server = DnsServer.parse(text)
        if server is not None:
            ipaddress.ip_address(server.host)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (an IP address), not {text!r}"
                                         ) from None
    return str(server or "")


def add_up_options(up: argparse.ArgumentParser, domain: Callable[[str], str]) -> None:
    """`mailpipe up`'s DNS: the one server every lookup asks, the blocklists the MX asks."""
    up.add_argument("--dns", type=dns_server_argument, metavar="HOST:PORT",
                    default=os.environ.get("MAILPIPE_DNS", ""), help="the DNS server every "
                    "lookup asks (default: $MAILPIPE_DNS, else the system's)")
    up.add_argument("--dnsbl", action="append", type=domain, default=[], metavar="ZONE",
                    help="a DNS blocklist the MX asks about each client address, through "
                    "--dns (repeatable; default none): a listed client's mail goes to Junk")


def add_command(commands: Any, stack_options: Callable[[argparse.ArgumentParser], None],
                domain: Callable[[str], str]) -> None:
    parser = commands.add_parser(
        "dns", help="the DNS records to publish for a hosted domain, as zone-file lines")
    parser.add_argument("domain", type=domain, metavar="DOMAIN")
    parser.add_argument("--check", action="store_true",
                        help="ask DNS instead: name each record missing or different "
                        "(status 1 then)")
    parser.add_argument("--dns", type=dns_server_argument, default="", metavar="HOST:PORT",
                        help="the DNS server --check asks (default: the stack's, else the "
                        "system's)")
    stack_options(parser)


def run(arguments: argparse.Namespace, outputs: dict[str, str], client: Any) -> int:
    domain = arguments.domain
    hosted = [name.strip().lower() for name in outputs.get("HostedDomains", "").split(",")]
    if domain not in hosted:
        print(f"mailpipe: {domain} is not a domain of this stack ({', '.join(hosted)})",
              file=sys.stderr)
        return 2
    # Read first: a stack without them (an older template) is said before anything else.
    edge_hostname, user_pool_id = outputs["EdgeHostname"], outputs["UserPoolId"]
    keys: list[SigningKey] = []
    if "DkimKeysSecretArn" in outputs:
        try:
            keys = keys_for_domain(keys_of(client("secretsmanager").get_secret_value(
                SecretId=outputs["DkimKeysSecretArn"])["SecretString"]), domain)
        except KeysDocumentError as exc:
            print(f"mailpipe: {exc} ({outputs['DkimKeysSecretArn']})", file=sys.stderr)
            return 1
    if not keys:
        print(f"mailpipe: no DKIM keys for {domain} in this stack: no DKIM records",
              file=sys.stderr)
    report_address = _report_address(client("cognito-idp"), user_pool_id, domain)
    if report_address is None:
        print(f"mailpipe: no account at {domain} to receive DMARC and TLS reports: DMARC "
              "without rua=, no TLS-RPT record (add postmaster@ and run this again)",
              file=sys.stderr)
    found = records(domain, edge_hostname, keys, report_address)
    if not arguments.check:
        print(zone_text(domain, found), end="")
        return 0
    server = DnsServer.parse(arguments.dns or outputs.get("DnsServer", ""))
    try:
        problems = check(found, sync_resolver(server))
    except DnsUnanswered as exc:
        print(f"mailpipe: DNS ({server or 'the system resolver'}) did not answer: {exc}",
              file=sys.stderr)
        return 1
    print("\n".join(problems) if problems
          else f"all {len(found)} records of {domain} are published")
    return 1 if problems else 0


def _report_address(cognito: Any, user_pool_id: str, domain: str) -> str | None:
    """The preferred report mailbox that is an account at `domain`, else its first account
    (accounts are the pool's users, named by their address)."""
    addresses = sorted(
        str(user["Username"]).lower()
        for page in cognito.get_paginator("list_users").paginate(UserPoolId=user_pool_id)
        for user in page.get("Users", [])
        if str(user["Username"]).lower().endswith(f"@{domain}"))
    for mailbox in REPORT_MAILBOXES:
        if f"{mailbox}@{domain}" in addresses:
            return f"{mailbox}@{domain}"
    return addresses[0] if addresses else None
