"""The order in which one recipient's verdict is reached (issue 29; mox's order: what the
account knows of the sender before what the words say):

1. signals: GTUBE, a blocklist listing, a DMARC quarantine: Junk, whatever else;
2. the account's lists: a block entry matching the claimed From address or domain, an
   allow entry matching a proven identity; an address entry beats a domain entry, and
   at equal specificity block wins;
3. the account's history with the proven identities, the address before the domain: one
   it wrote to, or whose mail it only ever kept, goes to the Inbox; one whose mail it
   only ever taught as junk goes to Junk (a domain only after DOMAIN_JUNKED_AT_LEAST of
   its messages: one junk message from a mail provider's domain must not send every
   other sender there to Junk; and never for a domain anyone can have an address on,
   SHARED_MAIL_DOMAINS); mixed says nothing;
4. the classifier, only when the account trained it enough: a probability of junk at or
   above JUNK_THRESHOLD goes to Junk; anything else, and an untrained model, the Inbox.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mailcore.domain.junk import (
    JUNK_THRESHOLD,
    DecidedBy,
    FilterSettings,
    JunkSignals,
    JunkVerdict,
    RecipientFilterState,
)

DOMAIN_JUNKED_AT_LEAST = 3
# Domains where anyone can have an address: a DMARC pass proves only that the sender has an
# account there, so the history of one correspondent on them says nothing of the others.
# Their history counts by address alone (writing to one Gmail user trusts that user, not
# every Gmail sender); an allow or block entry the user writes for one still applies.
SHARED_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
    "yahoo.com", "ymail.com", "aol.com", "icloud.com", "me.com", "mac.com", "gmx.com",
    "gmx.net", "gmx.de", "web.de", "mail.com", "proton.me", "protonmail.com", "zoho.com",
    "yandex.com", "yandex.ru", "mail.ru", "qq.com", "163.com", "126.com", "naver.com",
    "fastmail.com", "tutanota.com", "hey.com",
})


def decide(*, signals: JunkSignals, quarantined: bool, claimed: Sequence[str],
           proven: Sequence[str], state: RecipientFilterState,
           content: Callable[[], float | None]) -> JunkVerdict:
    """Where one account's copy goes. `content` (the classifier's probability) is called
    at most once, and only when the order reaches it with a trained model."""
    reasons = (("gtube",) if signals.gtube else ()) + tuple(
        f"dnsbl:{zone}" for zone in signals.dnsbl) + (
        ("dmarc-quarantine",) if quarantined else ())
    if reasons:
        return JunkVerdict(True, DecidedBy.SIGNAL, None, reasons)
    listed = _by_settings(state.settings, claimed, proven)
    if listed is not None:
        return listed
    remembered = _by_history(state, proven)
    if remembered is not None:
        return remembered
    if not state.trained:
        return JunkVerdict(False, DecidedBy.DEFAULT, None, ("untrained",))
    score = content()
    if score is None:  # the model read was trained less than the state said
        return JunkVerdict(False, DecidedBy.DEFAULT, None, ("untrained",))
    if score >= JUNK_THRESHOLD:
        return JunkVerdict(True, DecidedBy.CONTENT, score, ("content",))
    return JunkVerdict(False, DecidedBy.CONTENT, score, ())


def _by_settings(settings: FilterSettings, claimed: Sequence[str],
                 proven: Sequence[str]) -> JunkVerdict | None:
    block = {entry.lower() for entry in settings.block}
    allow = {entry.lower() for entry in settings.allow}
    for is_address in (True, False):  # an address entry first: it is the more specific
        blocked = next((identity for identity in claimed
                        if ("@" in identity) == is_address and identity in block), None)
        if blocked is not None:
            return JunkVerdict(True, DecidedBy.SETTINGS, None, (f"blocked:{blocked}",))
        allowed = next((identity for identity in proven
                        if ("@" in identity) == is_address and identity in allow), None)
        if allowed is not None:
            return JunkVerdict(False, DecidedBy.SETTINGS, None, (f"allowed:{allowed}",))
    return None


def _by_history(state: RecipientFilterState, proven: Sequence[str]) -> JunkVerdict | None:
    for identity in proven:
        if "@" not in identity and identity in SHARED_MAIL_DOMAINS:
            continue
        history = state.history.get(identity)
        if history is None:
            continue
        if history.wrote_to:
            return JunkVerdict(False, DecidedBy.HISTORY, None, (f"wrote-to:{identity}",))
        if history.not_junk and not history.junk:
            return JunkVerdict(False, DecidedBy.HISTORY, None, (f"kept:{identity}",))
        enough = 1 if "@" in identity else DOMAIN_JUNKED_AT_LEAST
        if history.junk >= enough and not history.not_junk:
            return JunkVerdict(True, DecidedBy.HISTORY, None, (f"junked:{identity}",))
    return None
