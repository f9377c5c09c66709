"""`mailpipe dns`: the lines it prints read back as a name server reads them, what --check
takes as the same record, and its bad arguments (the stack-wide tests are in
tests/e2e/test_dns_records.py)."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from datetime import date

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from mailcore.authentication.signing_keys import new_keys
from mailpipe.cli import main
from mailpipe.dns_records import Record, _agrees, records


def test_a_dkim_key_longer_than_one_txt_string_is_printed_as_several() -> None:
    rsa, ed25519 = new_keys("crepes.fr", date(2026, 12, 7))
    printed = {record.name: record.line() for record in
               records("crepes.fr", "mx.crepes.fr", [rsa, ed25519], "postmaster@crepes.fr")}
    for key in (rsa, ed25519):
        name, _ttl, _class, kind, data = printed[key.record_name].split(None, 4)
        assert (name, kind) == (f"{key.record_name}.", "TXT")
        record = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, data)
        assert all(len(string) <= 255 for string in record.strings)  # type: ignore[attr-defined]
        assert b"".join(record.strings).decode() == key.txt_record  # type: ignore[attr-defined]
    assert len(rsa.txt_record) > 255 and printed[rsa.record_name].count('" "') >= 1


SPF = Record("crepes.fr", "TXT", "v=spf1 mx -all")
DKIM = Record("mp20261207r._domainkey.crepes.fr", "TXT", "v=DKIM1; k=rsa; p=MCowBQYDK2VwAyEA")
STS = Record("_mta-sts.crepes.fr", "TXT", "v=STSv1; id=19011595f5dc8058e25e")
DMARC = Record("_dmarc.crepes.fr", "TXT", "v=DMARC1; p=quarantine; rua=mailto:pm@crepes.fr")


@pytest.mark.parametrize(("expected", "published", "same"), [
    (SPF, "v=spf1 mx -all", True),
    (SPF, "v=spf1 mx include:amazonses.com -all", True),  # what the SES comment says
    (SPF, "v=spf1 include:amazonses.com -all", False),
    (SPF, "v=spf1 mx ~all", False),
    (DMARC, "v=DMARC1;p=quarantine;rua=mailto:pm@crepes.fr", True),
    (DMARC, "v=DMARC1; p=reject; rua=mailto:pm@crepes.fr", True),  # the advice's next step
    (DMARC, "v=DMARC1; p=none; rua=mailto:pm@crepes.fr", False),
    (DMARC, "v=DMARC1; p=quarantine; rua=mailto:a@b.example,mailto:pm@crepes.fr", True),
    (DMARC, "v=DMARC1; p=quarantine", False),
    (DKIM, "p=MCowBQYDK2VwAyEA", True),  # v= and k=rsa are RFC 6376's defaults
    (DKIM, "v=DKIM1; k=rsa; p=MCowBQYDK2Vw AyEA", True),  # whitespace is not significant
    (DKIM, "v=DKIM1; k=ed25519; p=MCowBQYDK2VwAyEA", False),
    (DKIM, "v=DKIM1; k=rsa; p=MCowBQYDK2VwAyEB", False),
    (STS, "v=STSv1; id=20261207enforce", True),  # a new id once the policy says enforce
    (STS, "v=STSv1;", False),
])
def test_check_takes_a_record_that_says_as_much_as_ours_as_published(
        expected: Record, published: str, same: bool) -> None:
    assert _agrees(expected, published) is same


@pytest.mark.parametrize(("arguments", "said"), [
    (["dns"], "the following arguments are required: DOMAIN"),
    (["dns", "crepes fr"], "not a domain name"),
    (["dns", "crepes.fr", "--check", "--dns", "localhost:53"], "HOST:PORT (an IP address)"),
    (["dns", "crepes.fr", "--dns", "127.0.0.1:70000"], "HOST:PORT (an IP address)"),
    (["dns", "crepes.fr", "--stack", "x", "--aws-port", "4566"], "not allowed with"),
    (["up", "--dns", "10.0.0.2:dns"], "HOST:PORT (an IP address)"),
])
def test_a_bad_argument_is_one_line_and_status_2(arguments: list[str], said: str) -> None:
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err), \
            pytest.raises(SystemExit) as ended:
        main(arguments)
    assert ended.value.code == 2
    [line] = err.getvalue().splitlines()
    assert line.startswith("mailpipe") and said in line


def test_every_function_and_both_edge_containers_ask_the_stacks_one_dns_server() -> None:
    from mailpipe.local.stack import ROOT
    from mailpipe.local.template import load_template

    template = load_template(ROOT / "template.yaml")
    one_server = {"Ref": "DnsServer"}
    assert template["Globals"]["Function"]["Environment"]["Variables"]["MAILPIPE_DNS"] == \
        one_server
    containers = [container for resource in template["Resources"].values()
                  if resource["Type"] == "AWS::ECS::TaskDefinition"
                  for container in resource["Properties"]["ContainerDefinitions"]]
    assert {container["Name"]: {variable["Name"]: variable["Value"]
                                for variable in container["Environment"]}["MAILPIPE_DNS"]
            for container in containers} == {"edge": one_server, "imap": one_server}
    # Where `mailpipe dns --check` finds it (only when given: the VPC's resolver else).
    assert template["Outputs"]["DnsServer"]["Condition"] == "HasDnsServer"
