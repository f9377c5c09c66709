"""`mailpipe up --dns` and `mailpipe dns` on one local stack whose every lookup goes to a
private dnsmasq (issue 28): the records a domain owner publishes, printed ready to paste;
--check naming what DNS lacks until exactly those lines are published; direct delivery's MX
lookup through the same server."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from mailcore.authentication.signing_keys import keys_for_domain, keys_of
from mailpipe.cli import main
from mailpipe.local.dkim_keys import keys_file
from mailpipe.local.launcher import StackProcess, start_stack
from tests.dns_support import BrokenDns, Dnsmasq, Zone
from tests.e2e.api_client import wait_until
from tests.e2e.test_cli import _assert_one_line_error, _submit

pytestmark = pytest.mark.e2e

ALICE, PASSWORD = "alice@crepes.fr", "alice-password"
# What DNS serves before crepes.fr publishes anything: hamburger.edu's MX, on loopback.
HAMBURGER = Zone(mx={"hamburger.edu": [(10, "mx.hamburger.edu")]},
                 a={"mx.hamburger.edu": ["127.0.0.9"]})


@pytest.fixture(scope="module")
def dns_server() -> Iterator[Dnsmasq]:
    with Dnsmasq(Zone(mx=dict(HAMBURGER.mx), a=dict(HAMBURGER.a))) as server:
        yield server


@pytest.fixture(scope="module")
def crepes(dns_server: Dnsmasq) -> Iterator[StackProcess]:
    stack = start_stack(["crepes.fr"], {ALICE: PASSWORD}, "--dns", dns_server.address,
                        "--hostname", "mx.crepes.fr")
    yield stack
    assert stack.stop() == 0


def _mailpipe(stack: StackProcess, *arguments: str) -> subprocess.CompletedProcess[str]:
    """A `mailpipe` command against the stack, run in this process: the command's own
    code, without a second of interpreter start and imports per call."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main([*arguments, "--aws-port", str(stack.aws_port),
                       "--state-dir", str(stack.state_dir)])
    return subprocess.CompletedProcess(arguments, status, out.getvalue(), err.getvalue())


def _dns(stack: StackProcess, *arguments: str) -> subprocess.CompletedProcess[str]:
    return _mailpipe(stack, "dns", *arguments)


def _zone_of(printed: str, zone: Zone) -> Zone:
    """The printed zone-file lines (comments left out) read as a name server would, added
    to `zone`."""
    for line in printed.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        name, _ttl, _class, kind, data = line.split(None, 4)
        name = name.rstrip(".")
        record = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(kind), data)
        if kind == "TXT":
            zone.add_txt(name, b"".join(record.strings).decode())  # type: ignore[attr-defined]
        elif kind == "MX":
            zone.mx.setdefault(name, []).append(
                (record.preference, str(record.exchange).rstrip(".")))  # type: ignore[attr-defined]
        elif kind == "SRV":
            zone.srv.setdefault(name, []).append(
                (record.priority, record.weight, record.port,  # type: ignore[attr-defined]
                 str(record.target).rstrip(".")))  # type: ignore[attr-defined]
        else:
            raise AssertionError(f"a record of an unexpected type: {line}")
    return zone


def test_the_stack_says_which_dns_it_asks(crepes: StackProcess, dns_server: Dnsmasq) -> None:
    assert f"DNS         {dns_server.address}" in "".join(crepes.output)


def test_direct_delivery_asks_the_stacks_dns_for_the_mx(crepes: StackProcess) -> None:
    """hamburger.edu's MX and its address exist only in the test DNS: the bounce names
    both, so the deliver function asked that server (and refused the loopback hop)."""
    _submit(crepes, ALICE, PASSWORD, "bob@hamburger.edu", "to bob, directly")

    def bounced() -> list[str]:
        listed = _mailpipe(crepes, "queue").stdout
        return [row for row in listed.splitlines() if "bob@hamburger.edu" in row
                and " bounced " in row]

    [row] = wait_until(bounced, 60, interval=0.5, what="bob@hamburger.edu bounced")
    assert "5.4.4 no next hop with a public address: mx.hamburger.edu has no public " \
        "address (127.0.0.9)" in row


def _records(printed: str) -> dict[tuple[str, str], str]:
    """(name, type) -> the data of each zone-file line."""
    return {(name, kind): data for name, _ttl, _class, kind, data in
            (line.split(None, 4) for line in printed.splitlines()
             if line and not line.startswith(";"))}


def test_the_records_to_publish_are_printed_ready_to_paste(crepes: StackProcess) -> None:
    result = _dns(crepes, "crepes.fr")
    assert result.returncode == 0, result.stderr
    records = _records(result.stdout)
    assert records[("crepes.fr.", "MX")] == "10 mx.crepes.fr."
    assert records[("crepes.fr.", "TXT")] == '"v=spf1 mx -all"'
    # DKIM: the public halves of the keys the stack signs with (its state folder's).
    keys = keys_for_domain(keys_of(keys_file(crepes.state_dir).read_text()), "crepes.fr")
    assert sorted(key.algorithm for key in keys) == ["ed25519-sha256", "rsa-sha256"]
    for key in keys:
        data = records[(f"{key.record_name}.", "TXT")]
        assert "".join(data.split('" "')).strip('"') == key.txt_record
    assert records[("_mta-sts.crepes.fr.", "TXT")].startswith('"v=STSv1; id=')
    assert records[("_submission._tcp.crepes.fr.", "SRV")] == "0 1 587 mx.crepes.fr."
    assert records[("_imaps._tcp.crepes.fr.", "SRV")] == "0 1 993 mx.crepes.fr."
    assert records[("_imap._tcp.crepes.fr.", "SRV")] == "10 1 143 mx.crepes.fr."
    comments = "\n".join(line for line in result.stdout.splitlines() if line.startswith(";"))
    assert "https://mta-sts.crepes.fr/.well-known/mta-sts.txt" in comments
    assert ";   mode: testing" in comments and ";   mx: mx.crepes.fr" in comments
    assert "include:amazonses.com" in comments
    assert "p=reject once" in comments and "mailing list" in comments
    # Printing twice prints the same (the MTA-STS id follows the policy, not the clock).
    assert _dns(crepes, "crepes.fr").stdout == result.stdout


def test_reports_go_to_postmaster_once_it_is_an_account(crepes: StackProcess) -> None:
    """Alice's is the domain's only account at first: the reports go to her."""
    report = {("_dmarc.crepes.fr.", "TXT"): '"v=DMARC1; p=quarantine; rua=mailto:{}"',
              ("_smtp._tls.crepes.fr.", "TXT"): '"v=TLSRPTv1; rua=mailto:{}"'}
    records = _records(_dns(crepes, "crepes.fr").stdout)
    if "postmaster@" not in records[("_dmarc.crepes.fr.", "TXT")]:  # not added before
        assert {key: records[key] for key in report} == {
            key: text.format(ALICE) for key, text in report.items()}
        added = _mailpipe(crepes, "user", "add", "postmaster@crepes.fr",
                          "--password", "postmaster-password")
        assert added.returncode == 0, added.stderr
    records = _records(_dns(crepes, "crepes.fr").stdout)
    assert {key: records[key] for key in report} == {
        key: text.format("postmaster@crepes.fr") for key, text in report.items()}


def test_check_names_what_is_missing_until_the_printed_lines_are_published(
        crepes: StackProcess, dns_server: Dnsmasq) -> None:
    def hamburger_only() -> Zone:
        return Zone(mx=dict(HAMBURGER.mx), a=dict(HAMBURGER.a))

    printed = _dns(crepes, "crepes.fr").stdout
    names = sorted(list(key) for key in _records(printed))
    dns_server.publish(hamburger_only())
    empty = _dns(crepes, "crepes.fr", "--check")
    assert empty.returncode == 1, empty.stderr
    missing = empty.stdout.splitlines()
    assert all(line.startswith("missing ") for line in missing), missing
    assert sorted(line.split()[1:3] for line in missing) == names

    dns_server.publish(_zone_of(printed, hamburger_only()))
    published = _dns(crepes, "crepes.fr", "--check")
    assert (published.returncode, published.stdout.strip()) == (
        0, f"all {len(names)} records of crepes.fr are published")

    # A published record that says something else is named; the others still pass.
    dmarc = _records(printed)[("_dmarc.crepes.fr.", "TXT")]
    dns_server.publish(_zone_of(printed.replace("p=quarantine", "p=none"), hamburger_only()))
    different = _dns(crepes, "crepes.fr", "--check")
    assert different.returncode == 1
    assert different.stdout.splitlines() == [
        "different  _dmarc.crepes.fr. TXT: published "
        + dmarc.strip('"').replace("p=quarantine", "p=none")]
    dns_server.publish(hamburger_only())


def test_a_domain_the_stack_does_not_host_is_one_line(crepes: StackProcess) -> None:
    line = _assert_one_line_error(_dns(crepes, "hamburger.edu"), 2)
    assert "hamburger.edu is not a domain of this stack" in line




def test_check_asks_the_server_given_and_says_when_it_does_not_answer(
        crepes: StackProcess) -> None:
    with BrokenDns("servfail") as broken:
        result = _dns(crepes, "crepes.fr", "--check", "--dns", broken.address)
    assert broken.queries > 0  # --dns, not the stack's server
    line = _assert_one_line_error(result, 1)
    assert f"DNS ({broken.address}) did not answer" in line
