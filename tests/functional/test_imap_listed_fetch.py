"""FETCH of what clients list a folder with is written without pymap's objects per message:
the listing's items (UID, FLAGS, MODSEQ, INTERNALDATE: edge/imap/condstore/listed.py) and
those the stored views hold (RFC822.SIZE, ENVELOPE, BODYSTRUCTURE, BODY, kept header
fields: indexed.py). Every byte of its answers is the byte pymap's own FETCH writes, over a
real connection, for the same session and folder, with the views kept and without (mail
filed before views: a batch is then answered the general way, which makes them)."""

from __future__ import annotations

import pytest

from edge.imap.condstore import state
from tests.imap_support import ACCOUNTS, as_filed_before, running_imap
from tests.raw_imap import RawImap

ACCOUNT = "bob@hamburger.edu"
REQUESTS = [
    b"UID FETCH 1:* (FLAGS)",
    b"FETCH 1:* (FLAGS)",
    b"FETCH 1:* (UID FLAGS INTERNALDATE)",
    b"FETCH 2,4:5 (INTERNALDATE FLAGS FLAGS UID)",
    b"UID FETCH 3:* (UID)",
    b"FETCH 1:* FAST",  # a macro: FLAGS INTERNALDATE RFC822.SIZE (not only listed items)
    b"FETCH 1:* (FLAGS MODSEQ)",
    b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)",
    b"FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)",
    b"UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject "
    b"Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type "
    b"Reply-To)])",
    b"FETCH 1:* (BODY RFC822.SIZE)",
    b"FETCH 3:6 (BODY.PEEK[HEADER.FIELDS (subject)] BODY.PEEK[HEADER.FIELDS (X-Unknown)])",
    b"FETCH 1:* (FLAGS)",  # CONDSTORE enabled: MODSEQ comes with FLAGS
    b"FETCH 1:* (ENVELOPE FLAGS)",
]


def _message(number: int) -> bytes:
    return (f"From: a{number}@crepes.fr\r\nSubject: {number}\r\n\r\nbody {number}\r\n").encode()


def _answers(listed: bool, monkeypatch: pytest.MonkeyPatch, views: str = "kept"
             ) -> list[bytes]:
    with monkeypatch.context() as patch:
        if not listed:
            patch.setattr(state, "only_listed", lambda attributes: False)
            patch.setattr(state, "only_indexed", lambda attributes: False)
        with running_imap() as imap:
            client = RawImap.connect(imap.imaps_port, imap.client_tls())
            client.login(ACCOUNT, ACCOUNTS[ACCOUNT])
            dates = ['"07-Dec-2026 10:00:00 +0000"', '"01-Jan-2020 23:59:59 -0700"',
                     '"29-Feb-2024 00:00:01 +0545"']
            flags = ["()", r"(\Seen)", r"(\Seen \Flagged $Junk)", r"($Forwarded \Answered)",
                     r"(\Draft)"]
            for number in range(1, 8):
                raw = _message(number)
                answer = client.command(b"APPEND INBOX %b %b {%d}\r\n%b" % (
                    flags[number % len(flags)].encode(), dates[number % len(dates)].encode(),
                    len(raw), raw))
                assert answer.status == b"OK", answer
            as_filed_before(imap, views)
            # \Recent is the session's own (this session put the messages there).
            assert client.command(b"SELECT INBOX").status == b"OK"
            answers = []
            for request in REQUESTS:
                if request.endswith(b"(CHANGEDSINCE 1)"):
                    answers.append(b"".join(client.command(b"ENABLE CONDSTORE").untagged))
                answer = client.command(request)
                assert answer.status == b"OK", (request, answer)
                answers.append(b"".join(answer.untagged))
            client.close()
            return answers


@pytest.mark.parametrize("views", ["kept", "none", "damaged"])
def test_the_listed_fetch_writes_what_pymaps_fetch_writes(
        monkeypatch: pytest.MonkeyPatch, views: str) -> None:
    fast = _answers(True, monkeypatch, views)
    pymaps = _answers(False, monkeypatch, views)
    assert fast == pymaps
    # The answers hold what was asked: 7 messages, their flags, zones and MODSEQ.
    assert fast[0].count(b"FETCH (") == 7 and b"$Junk" in fast[0]
    assert b'"29-Feb-2024 00:00:01 +0545"' in fast[2]
    assert fast[-1].count(b"MODSEQ (") == 7 and fast[-1].count(b"ENVELOPE (") == 7
    assert any(answer.count(b"BODYSTRUCTURE (") == 7 for answer in fast)
    assert any(answer.count(b"BODY[HEADER.FIELDS (FROM TO CC") == 7 for answer in fast)
