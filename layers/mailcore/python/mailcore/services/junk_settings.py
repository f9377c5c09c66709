"""An account's junk filter as its owner sees and changes it (the API, the webmail): the
allow and block lists, how many days Junk keeps mail, and how far the classifier has been
trained (it decides nothing on content before MIN_TRAINED_EACH of each kind)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailcore.domain.address import try_parse_address
from mailcore.domain.junk import (
    MAX_ENTRY_LENGTH,
    MAX_JUNK_DAYS,
    MAX_LIST_ENTRIES,
    FilterSettings,
)
from mailcore.errors import InvalidRequest

if TYPE_CHECKING:
    from mailcore.ports import JunkFilterStore


@dataclass(frozen=True)
class JunkFilterView:
    settings: FilterSettings
    trained_junk: int
    trained_not_junk: int


def read(account: str, store: JunkFilterStore) -> JunkFilterView:
    # The filing read: settings and trained counts in one request, no sender asked for.
    state = store.recipient_state(account, ())
    return JunkFilterView(state.settings, state.trained_junk, state.trained_not_junk)


def save(account: str, settings: FilterSettings, store: JunkFilterStore) -> JunkFilterView:
    store.save_settings(account, settings)
    return read(account, store)


def settings_of(allow: Sequence[str], block: Sequence[str], junk_days: int) -> FilterSettings:
    """Checked settings, entries lower case and each list without repeats; InvalidRequest
    naming the first bad entry (its field, e.g. `block[2]`)."""
    if not 1 <= junk_days <= MAX_JUNK_DAYS:
        raise InvalidRequest(f"junk_days is a number of days from 1 to {MAX_JUNK_DAYS}",
                             "junk_days")
    return FilterSettings(allow=_entries(allow, "allow"), block=_entries(block, "block"),
                          junk_days=junk_days)


def _entries(values: Sequence[str], name: str) -> tuple[str, ...]:
    if len(values) > MAX_LIST_ENTRIES:
        raise InvalidRequest(f"{name} has at most {MAX_LIST_ENTRIES} entries", name)
    kept: dict[str, None] = {}
    for index, value in enumerate(values):
        kept[entry(value, f"{name}[{index}]")] = None
    return tuple(kept)


def entry(value: str, field: str) -> str:
    """An address (`a@b.example`) or a domain (`b.example`), lower case."""
    text = value.strip().lower()
    shown = value if len(value) <= 80 else value[:80] + "…"
    if not text or len(text) > MAX_ENTRY_LENGTH:
        raise InvalidRequest(f"{field} {shown!r}: an entry has 1 to {MAX_ENTRY_LENGTH} "
                             "characters", field)
    # A domain is checked as the domain of an address (the same strict rules).
    address = try_parse_address(text if "@" in text else f"postmaster@{text}")
    if address is None or ("@" not in text and "." not in text):
        raise InvalidRequest(f"{field} {shown!r} is not an address or a domain", field)
    return str(address) if "@" in text else address.domain
