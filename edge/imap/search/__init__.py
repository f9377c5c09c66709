"""SEARCH (RFC 3501 6.4.4) answered as Dovecot answers it (tests/functional/
test_imap_dovecot_search.py compares the two on the same messages): header criteria from
the message's stored IMAP view (the same values, mailcore/imap_view/view.py), the rest
from its raw bytes (edge/imap/backend/search_batch.py reads them).

pymap's own search reads the envelope objects of its parse, which mailpipe does not make
(ENVELOPE is written from the bytes, mailcore/imap_view/), and matches bodies and
headers undecoded. Here:
- strings match as substrings, case-insensitively after compatibility decomposition (as
  Dovecot's i;unicode-casemap: "cafe" finds "Café"), in text with its encoded words
  (RFC 2047), transfer encodings and charsets decoded;
- SUBJECT reads the field with its runs of white space made one space; FROM, TO, CC and
  BCC the addresses rewritten as `"Name" <local@domain>` and `group: ...;`; HEADER the
  field as written; an empty string asks only whether the field is there;
- BODY reads every text/* and message/* part's body, TEXT those and every header line;
- SENTBEFORE/SENTON/SENTSINCE the Date field's own day (its zone disregarded, as RFC 3501
  says); a message without a readable Date was sent on 1 January 1970, as in Dovecot.
  BEFORE/ON/SINCE the internal date's day in UTC;
- RECENT, NEW and OLD by the flags the session shows: \\Recent is not kept, so a session
  finds no RECENT or NEW message and every message OLD (what Dovecot answers once another
  session has seen them), unless the session itself put the message in its folder;
- a sequence or UID set is matched by its ranges, never expanded into every number it
  spans (pymap's would make a set of a folder's every UID up to the highest).
Every step reads at most the message once and is linear in its size; the caller runs it
off the event loop.

mailcore/imap_view/search_text.py reads a message as SEARCH sees it (parts, decoded text,
addresses); criteria.py turns the search keys into one test of a message.
"""
