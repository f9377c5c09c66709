"""The MessageStore port (RawMessageStore and ObjectStore): in memory and on S3 (moto)."""

from __future__ import annotations

import pytest

from mailcore.domain.envelope import Envelope
from mailcore.domain.ids import new_message_id
from mailcore.errors import MessageNotFound, PermanentFailure, TooLarge
from mailcore.ports import MessageStore
from mailcore.s3_keys import draft_key, message_id_of_key

RAW = b"From: alice@crepes.fr\r\nTo: bob@hamburger.edu\r\nSubject: hi\r\n\r\nbody\r\n"


def _envelope(recipients: int = 1) -> Envelope:
    return Envelope("alice@crepes.fr",
                    tuple(f"user{number}@hamburger.edu" for number in range(recipients)),
                    "192.0.2.1", "mail.crepes.fr", True)


@pytest.mark.parametrize("recipients", [1, 200])  # 200: more than S3's metadata holds
def test_a_message_comes_back_exactly_with_its_envelope(message_store: MessageStore,
                                                        recipients: int) -> None:
    message_id = new_message_id()
    envelope = _envelope(recipients)
    key = message_store.put(message_id, RAW, envelope)
    assert message_id_of_key(key) == message_id
    assert message_store.get_raw(key) == RAW
    assert message_store.get_envelope(key) == envelope
    assert message_store.get_message(key) == (envelope, RAW)
    assert message_store.exists(key)


def test_a_range_of_a_message_is_those_bytes_as_a_slice_gives_them(
        message_store: MessageStore) -> None:
    key = message_store.put(new_message_id(), RAW, _envelope())
    header_size = RAW.index(b"\r\n\r\n") + 4
    for start, end in ((0, header_size), (header_size, len(RAW)), (5, 6), (7, 7),
                       (header_size, len(RAW) + 100), (0, len(RAW))):
        assert message_store.get_range(key, start, end) == RAW[start:end], (start, end)
    message_store.delete_message(key)
    with pytest.raises(MessageNotFound):
        message_store.get_range(key, 0, 10)


def test_a_deleted_or_unknown_message_is_not_found(message_store: MessageStore) -> None:
    key = message_store.put(new_message_id(), RAW, _envelope(200))
    message_store.delete_message(key)
    message_store.delete_message(key)  # deleting what is gone does nothing
    assert not message_store.exists(key)
    for read in (message_store.get_raw, message_store.get_envelope):
        with pytest.raises(MessageNotFound):
            read(key)
    with pytest.raises(PermanentFailure):
        message_store.get_envelope(draft_key("not-a-message"))


def test_objects_keep_their_bytes_and_refuse_reads_over_the_limit(
        message_store: MessageStore) -> None:
    draft = message_store.draft_key(new_message_id())
    message_store.put_object(draft, RAW, "message/rfc822")
    message_store.put_object(draft, RAW + b"more\r\n", "message/rfc822")  # saved again
    assert message_store.get_object(draft, 10_000) == RAW + b"more\r\n"
    with pytest.raises(TooLarge):
        message_store.get_object(draft, 10)
    with pytest.raises(MessageNotFound):
        message_store.get_object(message_store.draft_key(new_message_id()), 10_000)
    assert draft in message_store.download_link(draft).replace("%2F", "/")
    message_store.delete_message(draft)
    assert not message_store.exists(draft)


def test_each_kind_of_object_has_its_own_place(message_store: MessageStore) -> None:
    accepted = new_message_id()
    message_key = message_store.put(accepted, RAW, _envelope())
    keys = {
        message_key,
        message_store.draft_key(accepted),
        message_store.part_key(accepted, 1),
        message_store.part_key(accepted, 2),
        message_store.upload_key("bob@hamburger.edu", accepted),
        message_store.upload_key("carol@hamburger.edu", accepted),  # another owner's
    }
    assert len(keys) == 6
    assert all(message_id_of_key(key) is None for key in keys - {message_key})
    form = message_store.upload_form(message_store.upload_key("bob@hamburger.edu", accepted),
                                     "application/pdf", 1000)
    assert form.url and form.fields["Content-Type"] == "application/pdf"
