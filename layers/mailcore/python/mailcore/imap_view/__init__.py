"""ENVELOPE, BODYSTRUCTURE and sections (RFC 3501 6.4.5, 7.4.2) from a message's raw bytes.

pymap builds these from Python's parsed email objects, and what comes out is not what
RFC 3501 asks (checked against Dovecot, tests/functional/test_imap_dovecot.py): the
envelope's date in INTERNALDATE form and its subject decoded, part sizes counting the
part's header, a body that keeps the line break before the next boundary, parameters
decoded from RFC 2231 into 8-bit text, and a disposition written as one string where the
grammar wants "(" type params ")", which a client's parser rejects. pymap's parse is also
superlinear in nesting (38 s for an 8 MiB message of 50 nested multiparts, measured).

Here everything is read from the bytes themselves: strings as they stand in the header
(encoded words stay encoded; decoding is the client's), each part's body ending where
RFC 2046 ends it. The message is indexed once, going forward, as Dovecot's message parser
reads it: a part is a span of offsets into the one bytes object (no part's bytes are
copied to find the parts inside it); the delimiters of all the multiparts still open are
found by bytes.find, each open boundary's search going forward only (parts.py's
_Indexer._next_delimiter says how), so the Python steps grow with the parts, not with the lines;
and line counts are summed from the parts inside. Whatever the nesting kind (multipart or
message/rfc822), each byte is read a bounded number of times (at most once per open
multipart, in C), so the cost is linear in the message's size; answers are written into
one list and joined once. Depth and part count are bounded as filing's parser bounds them
(mailcore's mime_limits), and each header field is read within bounds (below).

The modules, in the order a message is read:
- parts.py: the index of a message's parts (offsets into its bytes), made in one pass;
- fields.py: the header fields a part keeps, read in place, and their decoded text;
- content_type.py: Content-Type and Content-Disposition: type, subtype, parameters;
- strings.py: how the answers write strings (nstring, lists) and the lexical pieces
  header fields share (quoted pairs, comments);
- addresses.py and envelope.py: ENVELOPE;
- body_structure.py: BODY and BODYSTRUCTURE;
- sections.py: the parts a section number names and what BODY[section] answers.
"""
