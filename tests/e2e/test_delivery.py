"""The seed's journey end to end: alice@crepes.fr on stack A mails bob@hamburger.edu on
stack B, each stack's deliver function the SMTP client of the other's MX."""

from __future__ import annotations

import email
import email.utils
import json
import re
import shutil
import smtplib
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy

import pytest

from mailcore.authentication.signing_keys import SigningKey, keys_for_domain, keys_of
from mailpipe.local.dkim_keys import keys_file
from mailpipe.local.launcher import MAILPIPE, StackProcess, free_port, free_ports, start_stack
from mailpipe.local.stack import local_session, outputs_file
from tests.counting_receiver import ScriptedReceiver, start_receiver
from tests.dkim_support import OpenDkim, dkimpy_verifies, published, signature_tags
from tests.dns_support import Dnsmasq, Zone
from tests.e2e.api_client import ApiClient, wait_until

pytestmark = pytest.mark.e2e
ALICE, BOB = "alice@crepes.fr", "bob@hamburger.edu"
PASSWORDS = {ALICE: "alice-password", BOB: "bob-password"}
GONE, POLICY = "gone@far.test", "policy@far.test"
GONE_REPLY = f"550 5.1.1 <{GONE}>: Recipient address rejected: User unknown"


def _folder(stack: StackProcess, address: str, folder: str) -> list[dict]:
    client = ApiClient(stack, address, PASSWORDS[address])
    return list(client.get(f"/mailboxes/{folder}/messages").json()["messages"])


def _wait(condition, timeout: float = 60):
    return wait_until(condition, timeout, interval=0.5)


def _submit(stack: StackProcess, to: str, subject: str) -> None:
    context = ssl.create_default_context(cafile=str(stack.state_dir / "tls" / "cert.pem"))
    context.check_hostname = False
    with smtplib.SMTP("127.0.0.1", stack.submission_port, timeout=30) as client:
        client.starttls(context=context)
        client.login(ALICE, PASSWORDS[ALICE])
        client.sendmail(ALICE, [to], f"From: Alice <{ALICE}>\r\nTo: <{to}>\r\n"
                                     f"Subject: {subject}\r\n\r\nHello\r\nHow are you?\r\n")


def _queue(stack: StackProcess) -> list[str]:
    return subprocess.run([MAILPIPE, "queue", "--aws-port", str(stack.aws_port)],
                          capture_output=True, text=True, timeout=60, check=True
                          ).stdout.splitlines()


def _raw(stack: StackProcess, address: str, message_id: str) -> bytes:
    return ApiClient(stack, address, PASSWORDS[address]).get(
        f"/messages/{message_id}/raw").content


def _dsn_fields(raw: bytes) -> dict[str, str]:
    report = email.message_from_bytes(raw, policy=policy.default)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    human, status, headers = report.iter_parts()
    assert (human.get_content_type(), headers.get_content_type()) == (
        "text/plain", "text/rfc822-headers")
    assert status.get_content_type() == "message/delivery-status"
    per_message, per_recipient = status.get_payload()[:2]
    return {**dict(per_message.items()), **dict(per_recipient.items())}


@pytest.fixture(scope="module")
def receiver() -> Iterator[ScriptedReceiver]:
    """far.test's server: it refuses gone@ for good (5.1.1), policy@ by policy (5.7.1)."""
    controller, receiver = start_receiver({GONE: GONE_REPLY, POLICY: "550 5.7.1 Refused"})
    yield receiver
    controller.stop()


@pytest.fixture(scope="module")
def stacks(receiver: ScriptedReceiver) -> Iterator[dict[str, object]]:
    a_port, b_port = free_ports(2)
    a = start_stack(["crepes.fr"], {ALICE: PASSWORDS[ALICE]},
                    "--mx", f"hamburger.edu=127.0.0.1:{b_port}",
                    "--mx", f"far.test=127.0.0.1:{receiver.port}",
                    "--retry-schedule", "1s,2s", "--give-up-after", "5m", smtp_port=a_port)
    # crepes.fr's records as its owner publishes them: SPF for the address A delivers
    # from, DMARC, and the DKIM keys A signs with. B verifies what arrives against them.
    dns = Dnsmasq(published(_keys(a, "crepes.fr"), Zone(txt={
        "crepes.fr": ["v=spf1 ip4:127.0.0.0/8 -all"],
        "_dmarc.crepes.fr": ["v=DMARC1; p=quarantine; rua=mailto:alice@crepes.fr"]}))).start()
    b = start_stack(["hamburger.edu"], {BOB: PASSWORDS[BOB]},
                    "--mx", f"crepes.fr=127.0.0.1:{a_port}", "--dns", dns.address,
                    smtp_port=b_port)
    state = {"a": a, "b": b, "b_port": b_port, "dns": dns}
    yield state
    for stack in (state["a"], state["b"]):
        assert isinstance(stack, StackProcess)
        stack.stop()
    dns.stop()


def test_alice_mails_bob_across_two_stacks(stacks):
    a, b = stacks["a"], stacks["b"]
    _submit(a, BOB, "Test Email")

    [received] = _wait(lambda: [m for m in _folder(b, BOB, "Inbox")
                                if m["subject"] == "Test Email"])
    assert received["from"] == f"Alice <{ALICE}>"
    assert [m["subject"] for m in _folder(a, ALICE, "Sent")] == ["Test Email"]
    line = _wait(lambda: [row for row in _queue(a) if BOB in row and " delivered " in row])[0]
    assert "250 2.0.0 Ok: queued as" in line  # B's own reply, kept as the status


def _keys(stack: StackProcess, domain: str) -> list[SigningKey]:
    """The keys `mailpipe up` keeps for the domain under the state folder."""
    return keys_for_domain(keys_of(keys_file(stack.state_dir).read_text()), domain)


def test_what_alice_sends_reaches_bob_signed_as_her_sent_copy_is(stacks):
    a, b = stacks["a"], stacks["b"]
    # Without a Date (OpenDKIM calls a message without one a syntax error): the
    # submission port adds it before signing.
    _submit(a, BOB, "signed")
    assert ApiClient(a, ALICE, PASSWORDS[ALICE]).post("/messages", {
        "to": [BOB], "subject": "signed by the API", "text": "Hi"}).status_code == 202
    keys = _keys(a, "crepes.fr")
    with OpenDkim(published(keys)) as opendkim:  # crepes.fr's records, as published
        for subject in ("signed", "signed by the API"):
            [sent] = _wait(lambda s=subject: [m for m in _folder(a, ALICE, "Sent")
                                              if m["subject"] == s])
            [copy] = _wait(lambda s=subject: [m for m in _folder(b, BOB, "Inbox")
                                              if m["subject"] == s])
            signed, received = _raw(a, ALICE, sent["id"]), _raw(b, BOB, copy["id"])
            # Signed once: B got the bytes of Alice's Sent copy (B adds its trace above).
            assert received.endswith(signed) and received != signed
            assert signed.startswith(b"Authentication-Results: crepes.fr; auth=pass "
                                     b"smtp.auth=alice@crepes.fr\r\nDKIM-Signature: ")
            assert {(tags["a"], tags["d"], tags["s"]) for tags in signature_tags(signed)} == {
                (key.algorithm, "crepes.fr", key.selector) for key in keys}
            assert dkimpy_verifies(received, opendkim.dns.address, 0)
            assert dkimpy_verifies(received, opendkim.dns.address, 1)
            checked = opendkim.verify(received)  # a verifier that is not dkimpy
            assert checked.returncode == 0, checked.stderr


def _results(raw: bytes) -> list[str]:
    """The results (method=result and their properties) of the first header field, which
    must be the receiving stack's Authentication-Results."""
    first = re.match(rb"Authentication-Results: ([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)\r\n",
                     raw)
    assert first is not None, raw[:200]
    unfolded = re.sub(r"\s+", " ", first.group(1).decode())
    return [part.strip() for part in unfolded.split(";")]


def test_bob_sees_alices_mail_verified_and_a_copy_altered_in_transit_fails_dkim(stacks):
    a, b = stacks["a"], stacks["b"]
    _submit(a, BOB, "verified at B")
    [copy] = _wait(lambda: [m for m in _folder(b, BOB, "Inbox")
                            if m["subject"] == "verified at B"])
    raw = _raw(b, BOB, copy["id"])
    authserv_id, *results = _results(raw)
    assert authserv_id == "hamburger.edu"  # B's --hostname (its first domain)
    assert "spf=pass smtp.mailfrom=crepes.fr" in results
    assert "dmarc=pass header.from=crepes.fr policy.dmarc=quarantine" in results
    dkim = sorted(result for result in results if result.startswith("dkim="))
    assert [result.split(" header.b=")[0] for result in dkim] == sorted(
        f"dkim=pass header.d=crepes.fr header.s={key.selector} header.a={key.algorithm}"
        for key in _keys(a, "crepes.fr"))
    detail = ApiClient(b, BOB, PASSWORDS[BOB]).get(f"/messages/{copy['id']}").json()
    assert detail["authentication"]["from_verified"] is True

    # A relay between the two changes the body of what Alice's stack sent: both
    # signatures fail at B (SPF still passes: the relay is on an address crepes.fr names).
    [sent] = [m for m in _folder(a, ALICE, "Sent") if m["subject"] == "verified at B"]
    altered = _raw(a, ALICE, sent["id"]).replace(b"How are you?", b"How are you!!")
    with smtplib.SMTP("127.0.0.1", stacks["b_port"], timeout=30) as relay:
        relay.sendmail(ALICE, [BOB], altered)
    def both_copies() -> list[dict]:
        found = [m for m in _folder(b, BOB, "Inbox") if m["subject"] == "verified at B"]
        return found if len(found) == 2 else []

    [changed] = [raw for raw in (_raw(b, BOB, m["id"]) for m in _wait(both_copies))
                 if b"How are you!!" in raw]
    _, *results = _results(changed)
    assert sorted(result.split(" ")[0] for result in results if result.startswith("dkim=")
                  ) == ["dkim=fail", "dkim=fail"]


def test_unknown_recipient_at_b_bounces_to_alice_with_5_1_1(stacks):
    a = stacks["a"]
    _submit(a, "nobody@hamburger.edu", "to nobody")

    [dsn] = _wait(lambda: [m for m in _folder(a, ALICE, "Inbox")
                           if m["subject"] == "Undelivered Mail Returned to Sender"])
    fields = _dsn_fields(_raw(a, ALICE, dsn["id"]))
    assert fields["Final-Recipient"] == "rfc822; nobody@hamburger.edu"
    assert (fields["Action"], fields["Status"]) == ("failed", "5.1.1")
    assert "550 5.1.1" in fields["Diagnostic-Code"]
    assert fields["Reporting-MTA"] == "dns; crepes.fr"


def test_receiver_down_defers_then_delivers_once_when_it_is_back(stacks):
    a, b = stacks["a"], stacks["b"]
    assert b.stop() == 0
    _submit(a, BOB, "while you were down")
    line = _wait(lambda: [row for row in _queue(a) if "deferred" in row and BOB in row])[0]
    assert "4.4.1 connection to 127.0.0.1" in line

    keys = _keys(b, "hamburger.edu")
    b = stacks["b"] = start_stack(["hamburger.edu"], {BOB: PASSWORDS[BOB]},
                                  "--dns", stacks["dns"].address, smtp_port=stacks["b_port"])
    # A second `mailpipe up` signs with the keys of the first: published records stay valid.
    assert keys and _keys(b, "hamburger.edu") == keys
    secret = json.loads(outputs_file(b.state_dir, b.aws_port).read_text())["DkimKeysSecretArn"]
    secrets = local_session().client("secretsmanager",
                                     endpoint_url=f"http://127.0.0.1:{b.aws_port}")
    assert keys_for_domain(keys_of(secrets.get_secret_value(SecretId=secret)["SecretString"]),
                           "hamburger.edu") == keys
    arrived = _wait(lambda: [m for m in _folder(b, BOB, "Inbox")
                             if m["subject"] == "while you were down"], timeout=90)
    time.sleep(3)  # a second copy would have arrived by now
    assert len([m for m in _folder(b, BOB, "Inbox")
                if m["subject"] == "while you were down"]) == len(arrived) == 1


def test_receiver_that_always_defers_bounces_after_the_give_up_time():
    sink_port = free_port()
    sink = subprocess.Popen([shutil.which("smtp-sink") or "smtp-sink", "-u", "nobody",
                             "-r", "RCPT", f"127.0.0.1:{sink_port}", "10"])
    a = start_stack(["crepes.fr"], {ALICE: PASSWORDS[ALICE]},
                    "--mx", f"sink.test=127.0.0.1:{sink_port}",
                    "--retry-schedule", "1s", "--give-up-after", "6s")
    try:
        _submit(a, "x@sink.test", "never")
        [dsn] = _wait(lambda: [m for m in _folder(a, ALICE, "Inbox")
                               if m["subject"] == "Undelivered Mail Returned to Sender"])
        fields = _dsn_fields(_raw(a, ALICE, dsn["id"]))
        assert fields["Final-Recipient"] == "rfc822; x@sink.test"
        assert fields["Action"] == "failed"
        assert fields["Status"].startswith("4.")
        assert any(" bounced " in row and "x@sink.test" in row for row in _queue(a))
    finally:
        a.stop()
        sink.terminate()
        sink.wait(timeout=10)


# ---- suppression: our own delivery's 5.1.x reply, never a DSN from outside ------------------
def _suppression(stack: StackProcess, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MAILPIPE, "suppression", *arguments, "--aws-port",
                           str(stack.aws_port)], capture_output=True, text=True, timeout=60)


def _suppressed(alice: ApiClient) -> list[str]:
    listed = alice.get("/suppressions").json()
    assert listed["domain"] == "crepes.fr"
    return [entry["address"] for entry in listed["suppressions"]]


def _bounced(alice: ApiClient, subject: str) -> bool:
    sent = [m for m in alice.messages("Sent") if m["subject"] == subject]
    return bool(sent) and all(
        recipient["state"] == "bounced" for recipient in
        alice.get(f"/messages/{sent[0]['id']}/delivery").json()["recipients"])


def _forge_dsn(stack: StackProcess, victim: str) -> None:
    """What anyone may send our MX: a bounce claiming 5.1.1 for an address."""
    dsn = (f"From: MAILER-DAEMON@far.test\r\nTo: <{ALICE}>\r\n"
           "Subject: forged bounce\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
           "--b\r\nContent-Type: text/plain\r\n\r\nNo such user.\r\n"
           "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
           "Reporting-MTA: dns; far.test\r\n\r\n"
           f"Final-Recipient: rfc822; {victim}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
           f"Diagnostic-Code: smtp; 550 5.1.1 <{victim}>: User unknown\r\n--b--\r\n")
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as client:
        client.sendmail("", [ALICE], dsn)


def test_our_own_5_1_1_suppresses_the_address_until_removed_and_a_forged_dsn_does_not(
        stacks, receiver):
    """One test, so that the forged DSN's filing and our delivery overlap (make test's
    time): only a remote server's reply in our own SMTP conversation adds to the list."""
    a = stacks["a"]
    alice = ApiClient(a, ALICE, PASSWORDS[ALICE])
    _forge_dsn(a, "victim@far.test")
    _submit(a, POLICY, "to policy")
    _submit(a, GONE, "to gone")
    _wait(lambda: _bounced(alice, "to policy") and _bounced(alice, "to gone"))
    _wait(lambda: [m for m in _folder(a, ALICE, "Inbox") if m["subject"] == "forged bounce"])
    # 5.7.1 is about policy, not the address; the forged DSN is anyone's word.
    assert [address for address in _suppressed(alice) if address.endswith("@far.test")] == [
        GONE]

    # Refused at RCPT, and by the API, without a connection to far.test's server.
    connections = receiver.connections
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        _submit(a, GONE, "again")
    code, text = refused.value.recipients[GONE]
    assert code == 550 and text.decode().startswith(
        f"5.1.1 <{GONE}>: on crepes.fr's suppression list since ")
    assert f'after "{GONE_REPLY}"; remove it with mailpipe suppression remove' in text.decode()
    answer = alice.post("/messages", {"to": [GONE], "subject": "again", "text": "hi"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "suppressed"

    listed = _suppression(a, "list")
    [line] = [row for row in listed.stdout.splitlines() if "@far.test" in row]
    domain, address, since, reply = line.split(" ", 3)
    assert (domain, address, reply) == ("crepes.fr", GONE, GONE_REPLY)
    assert datetime.fromisoformat(since) <= datetime.now(UTC)
    removed = _suppression(a, "remove", GONE.upper())
    assert removed.stdout == f"{GONE} removed from crepes.fr's suppression list\n"
    assert receiver.connections == connections  # nothing was queued meanwhile

    # Taken off, mail to it goes through again, as far as far.test's server.
    _submit(a, GONE, "after removal")
    assert alice.post("/messages", {"to": [GONE], "text": "hi"}).status_code == 202
    # (Put on by hand and taken off through the API meanwhile.)
    assert alice.post("/suppressions", {"address": GONE}).status_code == 201
    deleted = alice.session.delete(f"{alice.api}/suppressions/{GONE}", timeout=30)
    assert deleted.status_code == 204
    _wait(lambda: receiver.connections > connections)
