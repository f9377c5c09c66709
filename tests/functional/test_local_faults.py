"""The local runtime's test mode around the real file_message handler, in moto: what the
end-to-end fault test counts on (tests/e2e/test_faults_and_load.py) shown message by
message."""

from __future__ import annotations

from datetime import UTC, datetime

from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.s3_keys import message_key
from mailcore.wiring import aws_adapters
from mailpipe.local.faults import FILING, FILING_FUNCTION, around_handler, chosen
from tests.conftest import load_function
from tests.functional.test_file_message import SEED, Context, _inbox, _notifications

CRASH, POISON = 0.3, 0.3


def _one_of_each() -> dict[str, str]:
    """A message id for each fate: poison, crash (once, after filing), none."""
    fates: dict[str, str] = {}
    while len(fates) < 3:
        message_id = new_message_id()
        key = message_key(message_id)
        fate = ("poison" if chosen(key, POISON, "poison")
                else "crash" if chosen(key, CRASH, "crash") else "none")
        fates.setdefault(fate, message_id)
    return fates


def test_poison_is_never_filed_and_a_crash_after_filing_fails_its_record_once(stack, tmp_path):
    handler = around_handler(FILING_FUNCTION, load_function("file_message").lambda_handler,
                             {FILING: f"crash={CRASH},poison={POISON},state={tmp_path}"})
    fates = _one_of_each()
    for message_id in fates.values():
        aws_adapters().store.put(message_id, SEED, Envelope(
            mail_from="alice@crepes.fr", rcpt_tos=("bob@hamburger.edu",), peer="192.0.2.1",
            helo="crepes.fr", tls=False, received_at=datetime.now(UTC)))
    event = _notifications(stack)
    record_of = {message_id: record["messageId"] for record in event["Records"]
                 for message_id in fates.values() if message_id in record["body"]}
    assert len(record_of) == 3

    first = handler(event, Context())
    # Poison failed before filing; the crash after filing (written, not acknowledged).
    assert sorted(item["itemIdentifier"] for item in first["batchItemFailures"]) == sorted(
        [record_of[fates["poison"]], record_of[fates["crash"]]])
    filed = {stored.message_id for stored in _inbox("bob@hamburger.edu")}
    assert filed == {fates["crash"], fates["none"]}

    again = handler(event, Context())
    # The crash happened once; its retry finds the message filed and adds no copy.
    assert again["batchItemFailures"] == [{"itemIdentifier": record_of[fates["poison"]]}]
    assert [stored.message_id for stored in _inbox("bob@hamburger.edu")].count(
        fates["crash"]) == 1
    assert len(list(tmp_path.iterdir())) == 1


def test_other_functions_and_a_stack_without_the_switch_run_the_handler_as_it_is():
    handler = load_function("file_message").lambda_handler
    assert around_handler("DeliverMailFunction", handler, {FILING: "poison=1"}) is handler
    assert around_handler(FILING_FUNCTION, handler, {}) is handler
