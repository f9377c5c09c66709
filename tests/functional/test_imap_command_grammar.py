"""No command ends a session with an unhandled error: hypothesis writes IMAP commands from
the grammar, valid and malformed (SEARCH, FETCH, STORE, LIST, STATUS, their UID forms, odd
atoms, literals, nested parentheses, numbers past 32 bits, sequence sets such as 0, * and
4294967296), and sends each to a live server on moto (DynamoDB and S3 as the template
makes them) whose INBOX holds messages with hostile headers. Every command must get a
tagged OK, NO or BAD, and the session must answer NOOP afterwards: never BYE [SERVERBUG],
never a dropped connection."""

from __future__ import annotations

import string
from collections.abc import Iterator, Sequence

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from mailcore.adapters.memory.mailbox import InMemoryMailboxRepository
from mailcore.adapters.memory.store import InMemoryMessageStore
from mailcore.adapters.memory.views import InMemoryImapViews
from mailcore.imap_view.view import ImapView
from mailcore.wiring import aws_adapters
from mailpipe.local.provision import provision
from tests.conftest import DOMAIN, REGION, ROOT, _reset_adapter_caches
from tests.imap_support import ACCOUNTS, RunningImap, running_imap
from tests.raw_imap import RawImap

BOB = "bob@hamburger.edu"


def _message(*lines: bytes) -> bytes:
    return b"\r\n".join(lines)


def _nested(depth: int) -> bytes:
    head = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n)
                    for n in range(depth))
    tail = b"".join(b"\r\n--b%d--" % n for n in reversed(range(depth)))
    return b"From: deep@crepes.fr\r\nSubject: deep\r\n" + head + b"Content-Type: text/plain" \
        b"\r\n\r\ninnermost" + tail + b"\r\n"


# 3,000 nested comments: RecursionError in email.utils.getaddresses once ended every
# FETCH ENVELOPE of it (issue 25, item 4).
DEEP_COMMENTS = _message(b"From: " + b"(" * 3000 + b"x@crepes.fr", b"Subject: deep comments",
                         b"", b"body")
HOSTILE = [
    _message(b"From: Alice <alice@crepes.fr>", b"To: bob@hamburger.edu",
             b"Subject: =?utf-8?q?Caf=C3=A9?=", b"Date: Fri, 27 Nov 2026 10:00:00 +0100",
             b"", b"an ordinary message"),
    _message(b"From: " + b"(" * 300 + b"x@crepes.fr", b"To: " + b"<" * 3000,
             b"Cc: " + b'"' * 3001, b"Subject: parentheses", b"", b"body"),
    _message(b"From: =?x-unknown?q?abc?= <a@b>", b"Subject: =?utf-8?b?////?= =?utf-8?q?=ZZ?=",
             b"Date: 99 Foo 99999 99:99:99 +9999", b"Content-Type: text/plain; charset=utf-16",
             b"Content-Transfer-Encoding: base64", b"", b"!!!not base64!!!"),
    _nested(120),
    _message(b"Subject: " + b"\xff\xfe" * 2000, b"X-Many: " + b"a, " * 5000,
             *[b"X-Line-%d: %d" % (n, n) for n in range(2000)], b"", b"\xff" * 100),
    b"no header separator at all",
    _message(b"Content-Type: message/rfc822", b"", b"Content-Type: message/rfc822", b"",
             b"Content-Type: multipart/digest; boundary=x", b"", b"--x", b"", b"--x--"),
]

NUMBER = st.sampled_from([b"0", b"1", b"2", b"3", b"7", b"4294967295", b"4294967296",
                          b"99999999999999999999", b"-1", b"01", b"1e3"])
SEQUENCE_ITEM = st.one_of(NUMBER, st.just(b"*"), st.builds(
    lambda low, high: low + b":" + high, NUMBER | st.just(b"*"), NUMBER | st.just(b"*")))
SEQUENCE_SET = st.lists(SEQUENCE_ITEM, min_size=1, max_size=4).map(b",".join)
# Printable, without what would start a literal or end the line: a literal comes only
# from LITERAL below, with its length right (a client that lies about one just waits).
ATOM = st.text(alphabet=string.printable.translate(str.maketrans("", "", "{}\r\n\x0b\x0c ")),
               min_size=1, max_size=12).map(str.encode)
QUOTED = st.text(alphabet=st.characters(blacklist_characters="\r\n", codec="utf-8"),
                 max_size=16).map(lambda text: b'"' + text.encode().replace(b"\\", b"\\\\")
                                  .replace(b'"', b'\\"') + b'"')
BROKEN_QUOTED = st.text(alphabet='ab"\\( ', max_size=8).map(lambda text: b'"' + text.encode())
LITERAL = st.binary(max_size=40).map(lambda data: b"{%d}\r\n" % len(data) + data)
STRING = st.one_of(ATOM, QUOTED, LITERAL, BROKEN_QUOTED)
DATE = st.sampled_from([b"01-Jan-2026", b"31-Feb-2026", b"1-Jan-99999", b"00-Foo-0000",
                        b'"27-Nov-2026"', b"yesterday"])
FLAG = st.sampled_from([b"\\Seen", b"\\Flagged", b"\\Answered", b"\\Draft", b"\\Recent",
                        b"\\Bogus", b"$Forwarded", b"$Junk", b"work", b"\\", b"\\*"]) | ATOM
SEARCH_LEAF = st.one_of(
    st.sampled_from([b"ALL", b"ANSWERED", b"DELETED", b"DRAFT", b"FLAGGED", b"NEW", b"OLD",
                     b"RECENT", b"SEEN", b"UNANSWERED", b"UNDELETED", b"UNDRAFT",
                     b"UNFLAGGED", b"UNSEEN", b"MODSEQ 1", b"EMAILID x", b"THREADID x"]),
    st.builds(lambda key, value: key + b" " + value,
              st.sampled_from([b"SUBJECT", b"FROM", b"TO", b"CC", b"BCC", b"BODY", b"TEXT",
                               b"KEYWORD", b"UNKEYWORD"]), STRING),
    st.builds(lambda name, value: b"HEADER " + name + b" " + value, STRING, STRING),
    st.builds(lambda key, number: key + b" " + number,
              st.sampled_from([b"LARGER", b"SMALLER", b"MODSEQ"]), NUMBER),
    st.builds(lambda key, day: key + b" " + day,
              st.sampled_from([b"BEFORE", b"ON", b"SINCE", b"SENTBEFORE", b"SENTON",
                               b"SENTSINCE"]), DATE),
    st.builds(lambda numbers: b"UID " + numbers, SEQUENCE_SET),
    SEQUENCE_SET, ATOM,
)
SEARCH_KEY = st.recursive(SEARCH_LEAF, lambda inner: st.one_of(
    inner.map(lambda key: b"NOT " + key),
    st.builds(lambda left, right: b"OR " + left + b" " + right, inner, inner),
    st.lists(inner, max_size=3).map(lambda keys: b"(" + b" ".join(keys) + b")")),
    max_leaves=6)
SEARCH = st.builds(
    lambda uid, charset, keys: uid + b"SEARCH" + charset + b" " + b" ".join(keys),
    st.sampled_from([b"", b"UID "]),
    st.sampled_from([b"", b" CHARSET UTF-8", b" CHARSET ISO-8859-1", b" CHARSET UTF-16",
                     b" CHARSET BOGUS", b" CHARSET {5}\r\nutf-8", b" RETURN (ALL)"]),
    st.lists(SEARCH_KEY, min_size=0, max_size=3))
FETCH_ITEM = st.sampled_from([
    b"FLAGS", b"UID", b"ENVELOPE", b"BODYSTRUCTURE", b"BODY", b"RFC822.SIZE",
    b"INTERNALDATE", b"RFC822", b"RFC822.HEADER", b"RFC822.TEXT", b"BODY[]",
    b"BODY.PEEK[HEADER]", b"BODY[TEXT]", b"BODY[1]", b"BODY[1.2.3]", b"BODY[0]",
    b"BODY[4294967296]", b"BODY[1.MIME]", b"BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]",
    b"BODY[HEADER.FIELDS.NOT ()]", b"BODY[]<0.10>", b"BODY[]<4294967296.1>", b"BINARY[1]",
    b"BINARY.SIZE[1]", b"BINARY.PEEK[]", b"MODSEQ", b"ALL", b"FAST", b"FULL",
    b"BODY[1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1]", b"BODY[",
    b"BODY[]<", b"EMAILID"]) | ATOM
FETCH = st.builds(
    lambda uid, numbers, items, modifier: uid + b"FETCH " + numbers + b" " + items + modifier,
    st.sampled_from([b"", b"UID "]), SEQUENCE_SET,
    FETCH_ITEM | st.lists(FETCH_ITEM, max_size=4).map(lambda items: b"(" + b" ".join(items)
                                                      + b")"),
    st.sampled_from([b"", b" (CHANGEDSINCE 1)", b" (CHANGEDSINCE 99999999999999999999)",
                     b" (BOGUS)", b" ("]))
STORE = st.builds(
    lambda uid, numbers, modifier, mode, flags: uid + b"STORE " + numbers + modifier + b" "
    + mode + b" " + flags,
    st.sampled_from([b"", b"UID "]), SEQUENCE_SET,
    st.sampled_from([b"", b" (UNCHANGEDSINCE 1)", b" (UNCHANGEDSINCE 0)", b" (BOGUS 1)"]),
    st.sampled_from([b"FLAGS", b"+FLAGS", b"-FLAGS.SILENT", b"+FLAGS.SILENT", b"FLAGS.BOGUS"])
    | ATOM,
    FLAG | st.lists(FLAG, max_size=3).map(lambda flags: b"(" + b" ".join(flags) + b")"))
MAILBOX = st.sampled_from([b"INBOX", b"inbox", b"Archive", b'"Archive/none"', b'""',
                           b'"&AOk-t&AOk-"', b'"&bogus"', b'"a/b/c"']) | STRING
LIST = st.builds(
    lambda verb, options, reference, pattern, returned: verb + options + reference + b" "
    + pattern + returned,
    st.sampled_from([b"LIST ", b"LSUB "]),
    st.sampled_from([b"", b"(SPECIAL-USE) ", b"(SUBSCRIBED REMOTE) ", b"(BOGUS ", b"() "]),
    MAILBOX, STRING | st.sampled_from([b"*", b"%", b'"*a*a*a*a*a*a*b"', b"%/%/%"]),
    st.sampled_from([b"", b" RETURN (SPECIAL-USE)", b" RETURN (", b" RETURN ()"]))
STATUS = st.builds(lambda mailbox, items: b"STATUS " + mailbox + b" " + items, MAILBOX,
                   st.sampled_from([b"(MESSAGES UIDNEXT UNSEEN)", b"(HIGHESTMODSEQ RECENT)",
                                    b"(UIDVALIDITY MAILBOXID)", b"()", b"(BOGUS)", b"MESSAGES",
                                    b"("]))
OTHER = st.one_of(
    st.builds(lambda verb, mailbox: verb + b" " + mailbox,
              st.sampled_from([b"CREATE", b"DELETE", b"SUBSCRIBE", b"UNSUBSCRIBE",
                               b"RENAME Archive", b"EXAMINE", b"SELECT"]), MAILBOX),
    # Into another folder only: a COPY of INBOX into itself would double it each time.
    st.builds(lambda verb, mailbox: verb + b" " + mailbox,
              st.sampled_from([b"COPY 1:*", b"UID COPY 1", b"COPY 0", b"COPY 4294967296"]),
              st.sampled_from([b"Archive", b'"Archive/none"', b'""']) | ATOM.filter(
                  lambda name: name.upper() != b"INBOX")),
    st.builds(lambda flags, day, message: b"APPEND INBOX " + flags + day + message,
              st.sampled_from([b"", b"(\\Seen) ", b"(\\Bogus $x) ", b"(", b"() "]),
              st.sampled_from([b"", b'"27-Nov-2026 10:00:00 +0100" ', b'"99-Foo-0000 00:00" ',
                               b'"01-Jan-1900 00:00:00 +9999" ']),
              LITERAL),
    st.sampled_from([b"NOOP", b"CHECK", b"CAPABILITY", b"NAMESPACE", b"ID NIL",
                     b'ID ("name" "x")', b"ENABLE CONDSTORE", b"ENABLE BOGUS", b"STARTTLS",
                     b"LOGIN a b", b"AUTHENTICATE PLAIN", b"SELECT", b"UID", b"UID BOGUS",
                     b"", b"(((((", b")", b"*", b"+", b"BYE", b"ESEARCH", b"XLIST \"\" *"]),
    st.binary(max_size=30).filter(lambda data: not any(char in data for char in b"{}\r\n")),
    st.builds(lambda depth: b"SEARCH " + b"(" * depth + b"ALL" + b")" * depth,
              st.integers(1, 5000)),
    st.builds(lambda depth: b"FETCH 1 " + b"(" * depth, st.integers(1, 5000)),
)
COMMAND = st.one_of(SEARCH, FETCH, STORE, LIST, STATUS, OTHER)


@pytest.fixture(scope="module")
def imap() -> Iterator[RunningImap]:
    """One server for the module, on template.yaml's tables and bucket in moto."""
    with pytest.MonkeyPatch.context() as environment:
        environment.delenv("AWS_ENDPOINT_URL", raising=False)
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}.items():
            environment.setenv(name, value)
        with mock_aws():
            provisioned = provision(ROOT, "test", {"HostedDomains": DOMAIN},
                                    boto3.session.Session(region_name=REGION), region=REGION)
            for name, value in provisioned.functions["FileMessageFunction"] \
                    .environment.items():
                if name.startswith("MAILPIPE_"):
                    environment.setenv(name, value)
            _reset_adapter_caches()
            adapters = aws_adapters()
            with running_imap(mailboxes=adapters.mailboxes, views=adapters.imap_views,
                              store=adapters.store,
                              references=adapters.references) as running:
                client = _session(running, select=None)
                assert client.command(b"CREATE Hostile").status == b"OK"
                hostile = [*HOSTILE, DEEP_COMMENTS]
                for folder, raw in [*((b"INBOX", raw) for raw in hostile),
                                    *((b"Hostile", raw) for raw in hostile)]:
                    answer = client.command(b"APPEND %s {%d}\r\n" % (folder, len(raw)) + raw)
                    assert answer.status == b"OK", answer
                client.close()
                yield running
            _reset_adapter_caches()


def _session(imap: RunningImap, select: bytes | None = b"INBOX") -> RawImap:
    client = RawImap.connect(imap.imaps_port, imap.client_tls(), timeout=20)
    client.login(BOB, ACCOUNTS[BOB])
    if select is not None:
        assert client.command(b"SELECT " + select).status == b"OK"
    return client


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(command=COMMAND)
def test_every_command_is_answered_and_the_session_goes_on(imap: RunningImap,
                                                          command: bytes) -> None:
    client = _session(imap)
    try:
        answer = client.command(command)
        assert answer.status in (b"OK", b"NO", b"BAD"), answer
        assert not any(line.startswith(b"* BYE") for line in answer.untagged), answer
        assert b"[SERVERBUG]" not in answer.tagged, answer  # the code, not an echo
        assert client.command(b"NOOP").status == b"OK"
    finally:
        client.close()


@pytest.mark.parametrize("command", [
    b"UID SEARCH SUBJECT x", b"SEARCH FROM x", b"SEARCH TO <", b"SEARCH CC x",
    b"SEARCH BCC x", b"SEARCH SENTBEFORE 01-Jan-2030", b"SEARCH SENTON 27-Nov-2026",
    b"SEARCH SENTSINCE 01-Jan-1970", b"SEARCH HEADER X-Many a", b"SEARCH TEXT innermost",
    b"SEARCH BODY innermost", b"SEARCH OR SUBJECT x NOT FROM y",
    b"SEARCH CHARSET UTF-8 SUBJECT {5}\r\ncaf\xc3\xa9", b"SEARCH SUBJECT {2}\r\n\xff\xfe",
    b"SEARCH CHARSET UTF-8 SUBJECT {2}\r\n\xff\xfe", b"SEARCH CHARSET \xff SUBJECT x",
    b"UID SEARCH UID 1:4294967295", b"SEARCH ()", b"SEARCH FROM x@crepes.fr",
    b"SELECT &AOk", b"SELECT &/", b"STATUS &x (MESSAGES)", b'LIST "&abc" "*"',
    b"CREATE &Jjo", b"SEARCH " + b"(" * 3000, b"SEARCH " + b"(" * 3000 + b"ALL" + b")" * 3000,
])
def test_each_command_that_ended_the_session_is_answered(imap: RunningImap,
                                                      command: bytes) -> None:
    """The searches that ended the session before (BYE [SERVERBUG]), each by itself."""
    client = _session(imap, b"Hostile")
    answer = client.command(command)
    assert answer.status in (b"OK", b"NO", b"BAD"), answer
    assert b"SERVERBUG" not in answer.tagged
    assert client.command(b"NOOP").status == b"OK"
    client.close()


@pytest.mark.parametrize("command", [b"SELECT &x", b"STATUS &AOk (MESSAGES)", b"CREATE a&",
                                     b'LIST "" &abc', b"EXAMINE &-&"])
def test_a_shifted_name_without_its_end_is_bad_before_login(imap: RunningImap,
                                                             command: bytes) -> None:
    """pymap's modified UTF-7 decoder never returned for "&" without "-": one line before
    login held the event loop for good. Now BAD, and another client is answered."""
    stranger = RawImap.connect(imap.imaps_port, imap.client_tls(), timeout=20)
    assert stranger.command(command).status == b"BAD"
    assert stranger.command(b"NOOP").status == b"OK"
    other = _session(imap)
    assert other.command(b"NOOP").status == b"OK"
    stranger.close()
    other.close()


class _BrokenStore(InMemoryMessageStore):
    """A store whose reads fail with an error nothing expects (a bug, a library's
    surprise): what the command does must fail, not the session."""

    def get_raw(self, key: str) -> bytes:
        raise RuntimeError("a fault no one foresaw")


class _BrokenViews(InMemoryImapViews):
    """Views kept, but read back with an error nothing expects: header criteria read
    the views (mailcore/imap_view), not the bytes."""

    def get_many(self, account: str, message_ids: Sequence[str]) -> dict[str, ImapView]:
        raise RuntimeError("a fault no one foresaw")


@pytest.mark.parametrize("command", [b"SEARCH BODY x", b"UID SEARCH SUBJECT x",
                                     b"SEARCH OR SEEN TEXT x", b"SEARCH SENTON 1-Jan-2026"])
def test_an_unforeseen_backend_error_is_no_serverbug_and_the_session_goes_on(
        command: bytes) -> None:
    store, mailboxes = _BrokenStore(), InMemoryMailboxRepository()
    with running_imap(store=store, mailboxes=mailboxes,
                      views=_BrokenViews(mailboxes)) as imap:
        client = _session(imap, select=None)
        raw = HOSTILE[0]
        assert client.command(b"APPEND INBOX {%d}\r\n" % len(raw) + raw).status == b"OK"
        assert client.command(b"SELECT INBOX").status == b"OK"
        answer = client.command(command)
        assert answer.status == b"NO" and b"[SERVERBUG]" in answer.tagged, answer
        assert client.command(b"SEARCH ALL").searched() == [1]
        assert client.command(b"NOOP").status == b"OK"
        client.close()


HEADER_PIECE = st.one_of(
    st.sampled_from([b"(", b")", b"<", b">", b'"', b"\\", b",", b":", b";", b"@", b" ",
                     b"\t", b"=?", b"?=", b"=?utf-8?q?caf=C3=A9?=", b"=?utf-8?b?////?=",
                     b"=?x-unknown?q?abc?=", b"=?utf-8*fr?Q?=ZZ?=", b"\xff", b"\xc3\xa9",
                     b"alice@crepes.fr", b"Name", b"group:", b"\r\n ", b"&AOk-"]),
    st.binary(max_size=6).filter(lambda data: b"\n" not in data and b"\r" not in data))
HEADER_VALUE = st.lists(HEADER_PIECE, max_size=40).map(b"".join) | st.builds(
    lambda piece, count: piece * count, HEADER_PIECE, st.integers(100, 3000))


@pytest.fixture(scope="module")
def memory_imap() -> Iterator[RunningImap]:
    with running_imap() as running:
        yield running


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.fixed_dictionaries({name: HEADER_VALUE for name in (
    b"From", b"To", b"Cc", b"Subject", b"Date", b"Content-Type")}), key=QUOTED)
def test_searches_over_any_header_are_answered(memory_imap: RunningImap,
                                               values: dict[bytes, bytes], key: bytes) -> None:
    """Hypothesis over hostile headers: whatever a sender writes in them, every header
    criterion gets OK and the session goes on."""
    raw = b"".join(name + b": " + value + b"\r\n" for name, value in values.items()) \
        + b"\r\nbody =C3=A9 text\r\n"
    client = _session(memory_imap, select=None)
    try:
        assert client.command(b"APPEND INBOX {%d}\r\n" % len(raw) + raw).status == b"OK"
        assert client.command(b"SELECT INBOX").status == b"OK"
        for criterion in (b"SUBJECT", b"FROM", b"TO", b"CC", b"BCC", b"TEXT", b"BODY",
                          b"HEADER Content-Type", b"HEADER Date"):
            answer = client.command(b"UID SEARCH " + criterion + b" " + key)
            assert answer.status == b"OK", (criterion, answer)
        for criterion in (b"SENTON 1-Jan-1970", b"NOT SENTBEFORE 1-Jan-2100",
                          b'OR FROM "" SUBJECT ""'):
            assert client.command(b"SEARCH " + criterion).status == b"OK"
        assert client.command(b"NOOP").status == b"OK"
    finally:
        client.close()
