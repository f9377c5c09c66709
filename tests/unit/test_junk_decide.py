"""The verdict order (mailcore.junk.decide): signals, then the account's lists, then its
history with the proven sender, then the classifier, and what each step may and may not do."""

from __future__ import annotations

import itertools

import pytest

from mailcore.domain.junk import (
    JUNK_THRESHOLD,
    MIN_TRAINED_EACH,
    DecidedBy,
    FilterSettings,
    JunkSignals,
    JunkVerdict,
    RecipientFilterState,
    SenderHistory,
)
from mailcore.junk.decide import decide

ADDRESS, DOMAIN = "ann@crepes.fr", "crepes.fr"
CLAIMED = (ADDRESS, DOMAIN)
TRAINED = {"model_version": 3, "trained_junk": MIN_TRAINED_EACH,
           "trained_not_junk": MIN_TRAINED_EACH}
NO_SIGNALS = JunkSignals()


class Content:
    """The classifier's answer, counting how often it was asked."""

    def __init__(self, score: float | None) -> None:
        self.score = score
        self.calls = 0

    def __call__(self) -> float | None:
        self.calls += 1
        return self.score


def _decide(*, signals: JunkSignals = NO_SIGNALS, quarantined: bool = False,
            claimed: tuple[str, ...] = CLAIMED, proven: tuple[str, ...] = CLAIMED,
            allow: tuple[str, ...] = (), block: tuple[str, ...] = (),
            history: dict[str, SenderHistory] | None = None, trained: bool = True,
            content: Content | None = None) -> tuple[JunkVerdict, int]:
    content = content if content is not None else Content(0.99)
    state = RecipientFilterState(**(TRAINED if trained else {}),
                                 settings=FilterSettings(allow=allow, block=block),
                                 history=history or {})
    verdict = decide(signals=signals, quarantined=quarantined, claimed=claimed,
                     proven=proven, state=state, content=content)
    return verdict, content.calls


@pytest.mark.parametrize(("signals", "quarantined", "reasons"), [
    (JunkSignals(gtube=True), False, ("gtube",)),
    (JunkSignals(dnsbl=("zen.example", "bl.example")), False,
     ("dnsbl:zen.example", "dnsbl:bl.example")),
    (JunkSignals(), True, ("dmarc-quarantine",)),
    (JunkSignals(gtube=True, dnsbl=("zen.example",)), True,
     ("gtube", "dnsbl:zen.example", "dmarc-quarantine")),
])
def test_signals_junk_whatever_the_lists_history_and_content_say(
        signals: JunkSignals, quarantined: bool, reasons: tuple[str, ...]) -> None:
    trusting = {ADDRESS: SenderHistory(wrote_to=True, not_junk=9)}
    verdict, calls = _decide(signals=signals, quarantined=quarantined, allow=CLAIMED,
                             history=trusting, content=Content(0.0))
    assert verdict == JunkVerdict(True, DecidedBy.SIGNAL, None, reasons)
    assert calls == 0


def test_block_matches_the_claimed_sender_and_allow_only_a_proven_one() -> None:
    forged, _ = _decide(claimed=CLAIMED, proven=(), block=(ADDRESS,))
    assert forged == JunkVerdict(True, DecidedBy.SETTINGS, None, (f"blocked:{ADDRESS}",))
    by_domain, _ = _decide(proven=(), block=(DOMAIN,))
    assert by_domain.reasons == (f"blocked:{DOMAIN}",) and by_domain.junk
    # An allowed address that the message did not prove is not allowed: on to content.
    unproven, calls = _decide(proven=(), allow=(ADDRESS, DOMAIN), content=Content(0.99))
    assert unproven.decided_by is DecidedBy.CONTENT and unproven.junk and calls == 1
    proven_domain, calls = _decide(proven=(DOMAIN,), allow=(DOMAIN,), content=Content(0.99))
    assert proven_domain == JunkVerdict(False, DecidedBy.SETTINGS, None, (f"allowed:{DOMAIN}",))
    assert calls == 0


@pytest.mark.parametrize(("allow", "block", "junk", "reason"), [
    ((ADDRESS,), (DOMAIN,), False, f"allowed:{ADDRESS}"),  # the address entry beats the domain
    ((DOMAIN,), (ADDRESS,), True, f"blocked:{ADDRESS}"),
    ((ADDRESS,), (ADDRESS,), True, f"blocked:{ADDRESS}"),  # equal: block wins
    ((DOMAIN,), (DOMAIN,), True, f"blocked:{DOMAIN}"),
    ((ADDRESS, DOMAIN), (ADDRESS, DOMAIN), True, f"blocked:{ADDRESS}"),
])
def test_the_more_specific_entry_wins_and_block_wins_a_tie(
        allow: tuple[str, ...], block: tuple[str, ...], junk: bool, reason: str) -> None:
    verdict, calls = _decide(allow=allow, block=block, content=Content(0.0 if junk else 0.99))
    assert verdict == JunkVerdict(junk, DecidedBy.SETTINGS, None, (reason,))
    assert calls == 0


def test_lists_beat_history() -> None:
    kept = {ADDRESS: SenderHistory(wrote_to=True)}
    blocked, _ = _decide(block=(DOMAIN,), history=kept)
    assert blocked.junk and blocked.decided_by is DecidedBy.SETTINGS
    junked = {ADDRESS: SenderHistory(junk=5)}
    allowed, _ = _decide(allow=(DOMAIN,), history=junked)
    assert not allowed.junk and allowed.decided_by is DecidedBy.SETTINGS


@pytest.mark.parametrize(("history", "junk", "reason"), [
    (SenderHistory(wrote_to=True), False, "wrote-to"),
    (SenderHistory(wrote_to=True, junk=7), False, "wrote-to"),
    (SenderHistory(not_junk=2), False, "kept"),
    (SenderHistory(junk=3), True, "junked"),
])
@pytest.mark.parametrize("identity", [ADDRESS, DOMAIN])
def test_history_decides_before_content(history: SenderHistory, junk: bool, reason: str,
                                        identity: str) -> None:
    verdict, calls = _decide(history={identity: history},
                             content=Content(0.0 if junk else 1.0))
    assert verdict == JunkVerdict(junk, DecidedBy.HISTORY, None, (f"{reason}:{identity}",))
    assert calls == 0


def test_a_domain_is_junked_by_history_only_after_three_junk_messages() -> None:
    # One junk message from a provider's domain (DMARC pass proves the domain of every
    # sender there) must not send the account's next new correspondent on it to Junk.
    for junk in (1, 2):
        verdict, calls = _decide(history={DOMAIN: SenderHistory(junk=junk)},
                                 content=Content(0.2))
        assert verdict == JunkVerdict(False, DecidedBy.CONTENT, 0.2, ()) and calls == 1
    verdict, _ = _decide(history={DOMAIN: SenderHistory(junk=3)}, content=Content(0.2))
    assert verdict == JunkVerdict(True, DecidedBy.HISTORY, None, (f"junked:{DOMAIN}",))
    # An address is its own sender: one lesson is enough.
    verdict, _ = _decide(history={ADDRESS: SenderHistory(junk=1)}, content=Content(0.2))
    assert verdict.junk and verdict.reasons == (f"junked:{ADDRESS}",)


def test_a_shared_mail_domain_has_no_history_of_its_own() -> None:
    # Writing to one Gmail user (or keeping one Gmail message) trusts that address only:
    # another Gmail sender's junk-like words are judged by content.
    stranger, friend = "stranger@gmail.com", "friend@gmail.com"
    history = {"gmail.com": SenderHistory(wrote_to=True, not_junk=4),
               friend: SenderHistory(wrote_to=True)}
    verdict, calls = _decide(proven=(stranger, "gmail.com"), history=history,
                             content=Content(0.99))
    assert verdict == JunkVerdict(True, DecidedBy.CONTENT, 0.99, ("content",)) and calls == 1
    verdict, _ = _decide(proven=(friend, "gmail.com"), history=history,
                         content=Content(0.99))
    assert verdict.reasons == (f"wrote-to:{friend}",) and not verdict.junk
    # ...while an entry the user wrote for the whole domain still applies.
    allowed, _ = _decide(proven=(stranger, "gmail.com"), allow=("gmail.com",),
                         content=Content(0.99))
    assert not allowed.junk and allowed.decided_by is DecidedBy.SETTINGS


def test_the_address_history_comes_before_the_domain_history() -> None:
    verdict, _ = _decide(history={ADDRESS: SenderHistory(junk=3),
                                  DOMAIN: SenderHistory(wrote_to=True)})
    assert verdict.reasons == (f"junked:{ADDRESS}",) and verdict.junk
    # A mixed history says nothing: the domain's is asked next, then the content.
    mixed, calls = _decide(history={ADDRESS: SenderHistory(junk=1, not_junk=1),
                                    DOMAIN: SenderHistory(not_junk=4)})
    assert mixed.reasons == (f"kept:{DOMAIN}",) and calls == 0
    both_mixed, calls = _decide(history={ADDRESS: SenderHistory(junk=1, not_junk=1),
                                         DOMAIN: SenderHistory(junk=2, not_junk=1)},
                                content=Content(0.97))
    assert both_mixed == JunkVerdict(True, DecidedBy.CONTENT, 0.97, ("content",))
    assert calls == 1


def test_a_forged_from_of_a_correspondent_gets_no_trust() -> None:
    """The account wrote to ann@crepes.fr; a message claiming her From that proved nothing
    (or proved another domain) is judged on its words."""
    trusted = {ADDRESS: SenderHistory(wrote_to=True), DOMAIN: SenderHistory(wrote_to=True)}
    for proven in ((), ("evil.example",)):
        verdict, calls = _decide(proven=proven, history=trusted, content=Content(0.999))
        assert verdict == JunkVerdict(True, DecidedBy.CONTENT, 0.999, ("content",))
        assert calls == 1
    genuine, calls = _decide(proven=CLAIMED, history=trusted, content=Content(0.999))
    assert genuine.reasons == (f"wrote-to:{ADDRESS}",) and not genuine.junk and calls == 0


def test_a_correspondent_is_never_junked_for_content() -> None:
    for identity, score in itertools.product((ADDRESS, DOMAIN), (JUNK_THRESHOLD, 1.0)):
        verdict, calls = _decide(history={identity: SenderHistory(wrote_to=True)},
                                 content=Content(score))
        assert not verdict.junk and calls == 0


@pytest.mark.parametrize("score", [1.0, JUNK_THRESHOLD, None])
def test_an_untrained_account_never_junks_on_content(score: float | None) -> None:
    verdict, calls = _decide(trained=False, content=Content(score))
    assert verdict == JunkVerdict(False, DecidedBy.DEFAULT, None, ("untrained",))
    assert calls == 0
    # Trained as the state says, yet the model read back says untrained: still no junk.
    verdict, calls = _decide(trained=True, content=Content(None))
    assert verdict == JunkVerdict(False, DecidedBy.DEFAULT, None, ("untrained",))
    assert calls == 1


def test_one_kind_short_of_the_minimum_is_untrained() -> None:
    content = Content(1.0)
    state = RecipientFilterState(model_version=1, trained_junk=500,
                                 trained_not_junk=MIN_TRAINED_EACH - 1)
    verdict = decide(signals=JunkSignals(), quarantined=False, claimed=CLAIMED, proven=(),
                     state=state, content=content)
    assert not verdict.junk and content.calls == 0


@pytest.mark.parametrize(("score", "junk"), [
    (JUNK_THRESHOLD, True), (0.999, True), (JUNK_THRESHOLD - 1e-9, False), (0.5, False),
    (0.0, False)])
def test_content_junks_at_the_threshold_and_keeps_its_score(score: float, junk: bool) -> None:
    verdict, calls = _decide(proven=(), content=Content(score))
    assert verdict == JunkVerdict(junk, DecidedBy.CONTENT, score, ("content",) if junk else ())
    assert calls == 1


def test_the_order_exhaustively() -> None:
    """Every combination of a signal, a list entry, a history and a score: the first step
    that has something to say decides, and content is asked only when it is reached."""
    histories = [None, SenderHistory(wrote_to=True), SenderHistory(not_junk=1),
                 SenderHistory(junk=1), SenderHistory(junk=1, not_junk=1)]
    cases = itertools.product((False, True), ((), (ADDRESS,), (DOMAIN,)),
                              ((), (ADDRESS,), (DOMAIN,)), histories, (False, True),
                              (0.1, 0.99), (CLAIMED, ()))
    seen = 0
    for signal, allow, block, history, trained, score, proven in cases:
        content = Content(score)
        verdict, calls = _decide(signals=JunkSignals(gtube=signal), allow=allow, block=block,
                                 proven=proven, history={ADDRESS: history} if history else {},
                                 trained=trained, content=content)
        seen += 1
        allowed = [entry for entry in allow if entry in proven]
        if signal:
            expected: DecidedBy = DecidedBy.SIGNAL
        elif block or allowed:
            expected = DecidedBy.SETTINGS
        elif proven and history is not None and not (history.junk and history.not_junk):
            expected = DecidedBy.HISTORY
        elif trained:
            expected = DecidedBy.CONTENT
        else:
            expected = DecidedBy.DEFAULT
        assert verdict.decided_by is expected, (signal, allow, block, history, trained)
        assert calls == (1 if expected is DecidedBy.CONTENT else 0)
        if expected is DecidedBy.CONTENT:
            assert verdict.junk == (score >= JUNK_THRESHOLD) and verdict.score == score
        if expected is DecidedBy.SETTINGS:
            # Block wins unless only an allowed address outranks a blocked domain.
            block_wins = bool(block) and ("@" in block[0] or not allowed
                                          or "@" not in allowed[0])
            assert verdict.junk == block_wins
    assert seen == 2 * 3 * 3 * 5 * 2 * 2 * 2
