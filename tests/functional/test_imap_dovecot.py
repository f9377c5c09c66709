"""The same messages APPENDed to a private Dovecot (Debian's dovecot-imapd, started from
its own configuration on the loopback) and to mailpipe; the same FETCHes must answer the
same bytes. Dovecot is the reference: ENVELOPE, BODYSTRUCTURE, sizes and sections are
where IMAP servers differ and clients break."""

from __future__ import annotations

import base64
import imaplib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from tests.dovecot_support import PASSWORD, private_dovecot
from tests.imap_support import VIEW_STATES, as_filed_before, running_imap

T = TypeVar("T")
pytestmark = pytest.mark.skipif(shutil.which("dovecot") is None,
                                reason="dovecot-imapd comes with make test (system-packages)")


def _message(*lines: str | bytes) -> bytes:
    return b"\r\n".join(line if isinstance(line, bytes) else line.encode() for line in lines)


CORPUS = {
    "alternative with an inline image": _message(
        '"Alice Example" <alice@crepes.fr>'.join(["From: ", ""]),
        "To: bob@hamburger.edu, Carol <carol@hamburger.edu>", "Cc: dan@crepes.fr",
        "Subject: =?utf-8?q?Caf=C3=A9_menu?=", "Date: Fri, 27 Nov 2026 10:00:00 +0100",
        "Message-ID: <m1@crepes.fr>", "In-Reply-To: <m0@hamburger.edu>", "MIME-Version: 1.0",
        'Content-Type: multipart/related; boundary="rel"', "", "--rel",
        'Content-Type: multipart/alternative; boundary="alt"', "", "--alt",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable", "", "Caf=C3=A9 menu", "--alt",
        "Content-Type: text/html; charset=utf-8", "",
        '<p>Menu <img src="cid:logo@crepes.fr"></p>', "--alt--", "--rel",
        'Content-Type: image/png; name="logo.png"', "Content-Transfer-Encoding: base64",
        "Content-ID: <logo@crepes.fr>", 'Content-Disposition: inline; filename="logo.png"',
        "", "iVBORw0KGgo=", "--rel--", ""),
    "forwarded message/rfc822": _message(
        "From: bob@hamburger.edu", "To: carol@hamburger.edu", "Subject: Fwd: hello",
        "Date: Fri, 27 Nov 2026 11:00:00 +0000", "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b"', "", "preamble", "--b",
        "Content-Type: text/plain", "", "see below", "--b", "Content-Type: message/rfc822",
        "", "From: alice@crepes.fr", "Subject: hello", "", "original body", "--b--",
        "epilogue", ""),
    "RFC 2231 attachment name": _message(
        "From: alice@crepes.fr", "To: bob@hamburger.edu", "Subject: facture",
        "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="x"', "", "--x",
        "Content-Type: text/plain; charset=us-ascii", "", "ci-joint", "--x",
        "Content-Type: application/pdf; name*=utf-8''facture%20%C3%A9t%C3%A9.pdf",
        "Content-Disposition: attachment; filename*=utf-8''facture%20%C3%A9t%C3%A9.pdf",
        "Content-Transfer-Encoding: base64", "", "JVBERi0xLjQK", "--x--", ""),
    "8-bit and encoded-word headers": _message(
        "From: =?iso-8859-1?q?Andr=E9?= <andre@crepes.fr>", b"To: b\xc3\xb6b <bob@hamburger.edu>",
        b"Subject: caf\xc3\xa9 8-bit", "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit", "", b"d\xc3\xa9j\xc3\xa0 vu", ""),
    "folded headers, no MIME at all": _message(
        "From: Long Name", " <long@crepes.fr>", "Subject: a subject", "\tfolded twice",
        "Reply-To: replies@crepes.fr", "", "line one", "line two", ""),
    "multipart without its boundary": _message(
        "From: <<broken", "To: ;;;, a@crepes.fr,, ,b@crepes.fr", "Subject: no boundary",
        "Content-Type: multipart/mixed",
        "", "just text, no parts", ""),
}


def _b64(data: bytes) -> str:
    return base64.encodebytes(data).decode().rstrip("\n").replace("\n", "\r\n")


_INNER_ALTERNATIVE = _message(
    "From: Dan <dan@crepes.fr>", "To: alice@crepes.fr", "Subject: inner",
    "Date: Thu, 26 Nov 2026 09:00:00 +0100", "Message-ID: <inner@crepes.fr>",
    "MIME-Version: 1.0", 'Content-Type: multipart/alternative; boundary="in"', "", "--in",
    "Content-Type: text/plain", "", "plain", "--in", "Content-Type: text/html", "",
    "<b>html</b>", "--in--", "")

CORPUS.update({
    "mailing-list digest": _message(
        "From: list-request@lists.crepes.fr", "To: list@lists.crepes.fr",
        "Subject: Crepes digest, Vol 3, Issue 12", "List-Id: <list.lists.crepes.fr>",
        "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="===digest=="', "",
        "--===digest==", 'Content-Type: text/plain; charset="us-ascii"',
        "Content-Description: Crepes digest, Vol 3, Issue 12", "", "Today's topics:",
        "  1. batter", "  2. pans", "", "--===digest==",
        'Content-Type: multipart/digest; boundary="===topics=="', "", "--===topics==", "",
        "From: alice@crepes.fr", "Subject: batter", "Message-ID: <t1@crepes.fr>", "",
        "more eggs", "", "--===topics==", "",
        "From: bob@hamburger.edu", "Subject: pans", "Content-Type: text/plain; charset=utf-8",
        "", "cast iron", "", "--===topics==", "Content-Type: text/plain", "",
        "a part that says what it is", "--===topics==--", "", "--===digest==--", ""),
    "calendar invitation": _message(
        "From: Carol <carol@hamburger.edu>", "To: bob@hamburger.edu",
        "Subject: Invitation: tasting @ Fri Dec 4", "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="mixed-cal"', "", "--mixed-cal",
        'Content-Type: multipart/alternative; boundary="alt-cal"', "", "--alt-cal",
        'Content-Type: text/plain; charset="UTF-8"; format=flowed; delsp=yes',
        "Content-Transfer-Encoding: base64", "", _b64(b"You have been invited"),
        "--alt-cal", 'Content-Type: text/html; charset="UTF-8"',
        "Content-Transfer-Encoding: quoted-printable", "", "<p>You have been invited=",
        "</p>", "--alt-cal", 'Content-Type: text/calendar; charset="UTF-8"; method=REQUEST',
        "Content-Transfer-Encoding: 7bit", "", "BEGIN:VCALENDAR", "METHOD:REQUEST",
        "BEGIN:VEVENT", "SUMMARY:tasting", "END:VEVENT", "END:VCALENDAR", "--alt-cal--",
        "--mixed-cal", 'Content-Type: application/ics; name="invite.ics"',
        'Content-Disposition: attachment; filename="invite.ics"',
        "Content-Transfer-Encoding: base64", "", _b64(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"),
        "--mixed-cal--", ""),
    "Apple Mail alternative with related": _message(
        "From: Alice Example <alice@crepes.fr>", "Subject: photo",
        "Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3731.500.231\\))",
        "Date: Mon, 30 Nov 2026 08:12:44 +0100", "To: Bob <bob@hamburger.edu>",
        "Message-Id: <ABCD-1234@crepes.fr>",
        'Content-Type: multipart/alternative;', '\tboundary="Apple-Mail=_5A0B1C2D"', "", "",
        "--Apple-Mail=_5A0B1C2D", "Content-Transfer-Encoding: 7bit",
        "Content-Type: text/plain;", "\tcharset=us-ascii", "", "see the photo", "",
        "--Apple-Mail=_5A0B1C2D", "Content-Type: multipart/related;",
        '\ttype="text/html";', '\tboundary="Apple-Mail=_6E7F8A9B"', "", "",
        "--Apple-Mail=_6E7F8A9B", "Content-Transfer-Encoding: 7bit",
        "Content-Type: text/html;", "\tcharset=us-ascii", "",
        '<html><body>see <img src="cid:F00D@crepes.fr"></body></html>',
        "--Apple-Mail=_6E7F8A9B", "Content-Transfer-Encoding: base64",
        "Content-Disposition: inline;", "\tfilename=IMG_0001.jpeg",
        "Content-Type: image/jpeg;", "\tx-unix-mode=0644;", "\tname=IMG_0001.jpeg",
        "Content-Id: <F00D@crepes.fr>", "", _b64(b"\xff\xd8\xff\xe0 jpeg"), "",
        "--Apple-Mail=_6E7F8A9B--", "", "--Apple-Mail=_5A0B1C2D--", ""),
    "Outlook mixed, related and alternative": _message(
        "From: Bob Smith <bob@hamburger.edu>", "To: 'Alice' <alice@crepes.fr>",
        "Subject: RE: report", "Thread-Topic: report", "Thread-Index: AQHZ",
        "Date: Tue, 1 Dec 2026 14:03:12 +0000", "Message-ID: <DB9PR01@hamburger.edu>",
        "In-Reply-To: <m0@crepes.fr>", "Content-Language: en-US", "MIME-Version: 1.0",
        'Content-Type: multipart/mixed;', '\tboundary="_004_DB9PR01_"', "",
        "--_004_DB9PR01_", 'Content-Type: multipart/related;',
        '\tboundary="_003_DB9PR01_";', '\ttype="multipart/alternative"', "",
        "--_003_DB9PR01_", 'Content-Type: multipart/alternative;',
        '\tboundary="_000_DB9PR01_"', "", "--_000_DB9PR01_",
        'Content-Type: text/plain; charset="us-ascii"',
        "Content-Transfer-Encoding: quoted-printable", "", "Report attached=2E", "",
        "--_000_DB9PR01_", 'Content-Type: text/html; charset="us-ascii"',
        "Content-Transfer-Encoding: quoted-printable", "",
        '<html><img src=3D"cid:image001.png@01DA"></html>', "", "--_000_DB9PR01_--", "",
        "--_003_DB9PR01_", 'Content-Type: image/png; name="image001.png"',
        'Content-Description: image001.png',
        'Content-Disposition: inline; filename="image001.png"; size=4;',
        '\tcreation-date="Tue, 01 Dec 2026 14:03:11 GMT";',
        '\tmodification-date="Tue, 01 Dec 2026 14:03:11 GMT"',
        "Content-ID: <image001.png@01DA>", "Content-Transfer-Encoding: base64", "",
        _b64(b"\x89PNG"), "", "--_003_DB9PR01_--", "", "--_004_DB9PR01_",
        "Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml"
        '.document;', '\tname="Report Q4.docx"', 'Content-Description: Report Q4.docx',
        'Content-Disposition: attachment;', '\tfilename="Report Q4.docx"; size=6;',
        "Content-Transfer-Encoding: base64", "", _b64(b"PK\x03\x04ab"), "",
        "--_004_DB9PR01_--", ""),
    "S/MIME signed": _message(
        "From: alice@crepes.fr", "To: bob@hamburger.edu", "Subject: signed",
        "MIME-Version: 1.0",
        'Content-Type: multipart/signed; protocol="application/pkcs7-signature";'
        ' micalg=sha-256; boundary="----sig"', "", "This is an S/MIME signed message", "",
        "------sig", "Content-Type: text/plain; charset=us-ascii", "", "signed text", "",
        "------sig", 'Content-Type: application/pkcs7-signature; name="smime.p7s"',
        "Content-Transfer-Encoding: base64",
        'Content-Disposition: attachment; filename="smime.p7s"',
        "Content-Description: S/MIME Cryptographic Signature", "", _b64(b"0\x82\x05signature"),
        "", "------sig--", ""),
    "S/MIME enveloped": _message(
        "From: alice@crepes.fr", "To: bob@hamburger.edu", "Subject: encrypted",
        "MIME-Version: 1.0",
        'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
        "Content-Transfer-Encoding: base64",
        'Content-Disposition: attachment; filename="smime.p7m"',
        "Content-Description: S/MIME Encrypted Message", "", _b64(b"0\x80\x06enveloped" * 9),
        ""),
    "PGP/MIME signed": _message(
        "From: carol@hamburger.edu", "To: bob@hamburger.edu", "Subject: pgp signed",
        "MIME-Version: 1.0",
        "Content-Type: multipart/signed; micalg=pgp-sha256;",
        ' protocol="application/pgp-signature"; boundary="pgpsig"', "",
        "This is an OpenPGP/MIME signed message (RFC 4880 and 3156)", "--pgpsig",
        "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 7bit", "",
        "signed", "", "--pgpsig",
        'Content-Type: application/pgp-signature; name="OpenPGP_signature.asc"',
        "Content-Description: OpenPGP digital signature",
        'Content-Disposition: attachment; filename="OpenPGP_signature.asc"', "",
        "-----BEGIN PGP SIGNATURE-----", "", "iQEz", "-----END PGP SIGNATURE-----", "",
        "--pgpsig--", ""),
    "PGP/MIME encrypted": _message(
        "From: carol@hamburger.edu", "To: bob@hamburger.edu", "Subject: ...",
        "MIME-Version: 1.0",
        'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";'
        ' boundary="pgpenc"', "", "--pgpenc", "Content-Type: application/pgp-encrypted",
        "Content-Description: PGP/MIME version identification", "", "Version: 1", "",
        "--pgpenc", 'Content-Type: application/octet-stream; name="encrypted.asc"',
        "Content-Description: OpenPGP encrypted message",
        'Content-Disposition: inline; filename="encrypted.asc"', "",
        "-----BEGIN PGP MESSAGE-----", "", "hQEM", "-----END PGP MESSAGE-----", "",
        "--pgpenc--", ""),
    "DSN with the returned message": _message(
        "From: Mail Delivery System <MAILER-DAEMON@mx.hamburger.edu>",
        "To: alice@crepes.fr", "Subject: Undelivered Mail Returned to Sender",
        "Auto-Submitted: auto-replied", "MIME-Version: 1.0",
        "Content-Type: multipart/report; report-type=delivery-status;",
        '\tboundary="dsn.boundary"', "", "This is a MIME-encapsulated message.", "",
        "--dsn.boundary", "Content-Description: Notification",
        "Content-Type: text/plain; charset=us-ascii", "", "I'm sorry to have to inform you",
        "", "--dsn.boundary", "Content-Description: Delivery report",
        "Content-Type: message/delivery-status", "", "Reporting-MTA: dns; mx.hamburger.edu",
        "", "Final-Recipient: rfc822; nobody@hamburger.edu", "Action: failed",
        "Status: 5.1.1", "", "--dsn.boundary", "Content-Description: Undelivered Message",
        "Content-Type: message/rfc822", "", "From: alice@crepes.fr",
        "To: nobody@hamburger.edu", "Subject: hello", "Date: Fri, 27 Nov 2026 10:00:00 +0100",
        "", "are you there?", "", "--dsn.boundary--", ""),
    "DSN with returned headers only": _message(
        "From: postmaster@hamburger.edu", "To: alice@crepes.fr",
        "Subject: Delivery Status Notification (Delay)", "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type="delivery-status";'
        ' boundary="d2"', "", "--d2", "Content-Type: text/plain", "", "delayed", "--d2",
        "Content-Type: message/delivery-status", "", "Reporting-MTA: dns; hamburger.edu",
        "", "Final-Recipient: rfc822;bob@hamburger.edu", "Action: delayed",
        "Status: 4.4.7", "", "--d2", "Content-Type: text/rfc822-headers", "",
        "From: alice@crepes.fr", "Subject: slow", "", "--d2--", ""),
    "8-bit headers and parameters": _message(
        b"From: J\xc3\xbcrgen M\xc3\xbcller <juergen@crepes.fr>",
        b"To: \"\xc3\x89lodie\" <elodie@crepes.fr>", b"Subject: R\xc3\xa9union \xe2\x82\xac",
        "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="8b"', "", "--8b",
        "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", "",
        b"ol\xc3\xa9", "--8b", b'Content-Type: application/pdf; name="\xc3\xa9t\xc3\xa9.pdf"',
        b'Content-Disposition: attachment; filename="\xc3\xa9t\xc3\xa9.pdf"',
        "Content-Transfer-Encoding: base64", "", "JVBERi0=", "--8b--", ""),
    "broken encodings": _message(
        "From: =?utf-8?b?QWxpY2U?= <alice@crepes.fr>",
        "Subject: =?unknown-8bit?q?broken=ZZ?= =?utf-8?b?!!!?=", "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="bad"', "", "--bad",
        "Content-Type: text/plain; charset=x-no-such-charset",
        "Content-Transfer-Encoding: quoted-printable", "", "soft=\r\nbreak =ZZ =4", "--bad",
        "Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64", "",
        "aGVsbG8*** not base64 ===", "--bad", "Content-Type: text/plain",
        "Content-Transfer-Encoding: x-uuencode", "", "begin 644 f", "end", "--bad--", ""),
    "RFC 2231 continuations": _message(
        "From: alice@crepes.fr", "Subject: long names", "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="c"', "", "--c",
        'Content-Type: application/pdf; name*0="a very long "; name*1="name.pdf"',
        "Content-Disposition: attachment; filename*0*=utf-8''%C3%A9t%C3%A9%20;",
        ' filename*1*=%C3%A0%20Paris; filename*2=".pdf"; size=3', "", "abc", "--c",
        "Content-Type: text/plain; charset*=us-ascii'en'us-ascii; z*1=out; z*0=of; a=order",
        "", "sorted", "--c", "Content-Type: text/plain; gap*0=x; gap*2=y", "", "gap",
        "--c--", ""),
    "group syntax": _message(
        "From: alice@crepes.fr", "To: undisclosed-recipients:;",
        'Cc: Team: bob@hamburger.edu, "Carol H." <carol@hamburger.edu>;, dan@crepes.fr',
        "Bcc: Empty Group:;", "Subject: groups", "", "body", ""),
    "addresses of every shape": _message(
        "From: (Alice in a comment) alice@crepes.fr, bob@hamburger.edu (Bob Comment)",
        'Sender: "Quoted \\"Name\\"" <sender@crepes.fr>',
        "Reply-To: <@relay.crepes.fr:alice@crepes.fr>, John Q. Public <jqp@crepes.fr>",
        'To: "a b"@crepes.fr, plain@hamburger.edu, carol@hamburger.edu',
        'Subject: a "quoted" \\ subject', "Date: 27 Nov 2026 10:00 +0100",
        "In-Reply-To: <a@b> <c@d>", "Message-ID: <shape@crepes.fr>", "", "body", ""),
    "nested message/rfc822": _message(
        "From: bob@hamburger.edu", "Subject: Fwd: Fwd: inner", "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="outer"', "", "--outer",
        "Content-Type: text/plain", "", "twice forwarded", "--outer",
        'Content-Type: message/rfc822; name="fwd.eml"',
        'Content-Disposition: attachment; filename="fwd.eml"', "",
        "From: carol@hamburger.edu", "Subject: Fwd: inner", "MIME-Version: 1.0",
        "Content-Type: message/rfc822", "", _INNER_ALTERNATIVE, "--outer--", ""),
    "message/rfc822 last, with a blank line": _message(
        "From: bob@hamburger.edu", "Subject: attached", "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="last"', "", "--last",
        "Content-Type: message/rfc822", "", "From: alice@crepes.fr", "Subject: in", "",
        "inner", "", "--last--", ""),
    "message/rfc822 at the top": _message(
        "From: bob@hamburger.edu", "Subject: whole", "MIME-Version: 1.0",
        "Content-Type: message/rfc822", "", "From: alice@crepes.fr", "Subject: in",
        "Content-Type: multipart/mixed; boundary=t", "", "--t", "", "one", "--t", "", "two",
        "--t--", ""),
    "parameters in other cases and comments": _message(
        "From: alice@crepes.fr", "Subject: cases", "MIME-Version: 1.0",
        'Content-Type: Text/HTML (the html) ; CharSet="ISO-8859-1" ; Format=Flowed',
        "Content-Transfer-Encoding: Quoted-Printable", "Content-Language: fr, en",
        "Content-Location: http://crepes.fr/menu.html", "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==",
        "Content-ID: <cases@crepes.fr>", "Content-Description: the menu", "",
        "<p>menu</p>", ""),
    "preamble, epilogue and empty parts": _message(
        "From: alice@crepes.fr", "Subject: empties", "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=e", "", "preamble line", "--e", "--e", "",
        "--e", "Content-Type: text/plain", "", "--e", "Content-Type: text/plain", "", "",
        "--e--", "epilogue", "more epilogue", ""),
    "header only, no body": _message("From: alice@crepes.fr", "Subject: only a header"),
    "line feeds only": b"From: alice@crepes.fr\nSubject: unix\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=lf\n\n--lf\nContent-Type: text/plain\n\n"
        b"one\ntwo\n--lf\nContent-Type: message/rfc822\n\nSubject: in\n\nx\n--lf--\n",
    "forwarded as attachment by Outlook": _message(
        "From: bob@hamburger.edu", "To: alice@crepes.fr", "Subject: FW: inner",
        "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="fwd"', "", "--fwd",
        'Content-Type: text/plain; charset="us-ascii"', "", "see attached", "", "--fwd",
        "Content-Type: message/rfc822", "Content-Disposition: attachment", "",
        _INNER_ALTERNATIVE, "--fwd--", ""),
    "same boundary nested": _message(
        "From: alice@crepes.fr", "Subject: same boundary", "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=same", "", "--same",
        "Content-Type: multipart/alternative; boundary=same", "", "--same",
        "Content-Type: text/plain", "", "inner", "--same--", "--same",
        "Content-Type: text/plain", "", "outer", "--same--", ""),
    "boundary that prefixes another": _message(
        "From: alice@crepes.fr", "Subject: prefix boundaries", "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=ab", "", "--ab",
        "Content-Type: multipart/alternative; boundary=abc", "", "--abc",
        "Content-Type: text/plain", "", "deep", "--abc--", "--ab",
        "Content-Type: text/plain", "", "shallow", "--ab--", ""),
    "parameter comments and an upper-case boundary name": _message(
        "From: alice@crepes.fr", "Subject: comments", "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; BOUNDARY="up" (the parts)', "", "--up",
        "Content-Type: text/plain; charset=us-ascii (Plain text)", "", "one", "--up",
        "Content-Type: text/plain; charset=\"utf-8\" ; format=flowed", "", "two",
        "--up--", ""),
    "boundary lines with trailing text": _message(
        "From: alice@crepes.fr", "Subject: trailing", "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=tt", "", "--tt   ",
        "Content-Type: text/plain", "", "white space after the boundary", "--tt garbage",
        "Content-Type: text/plain", "", "text after the boundary", "--tt--  ", ""),
    # An enclosed message that ends in its header, or in a multipart's close-delimiter
    # line, right before the next boundary: the line break is the enclosed message's, and
    # its size counts it (it once differed from Dovecot's by those 2 octets).
    "enclosed message of header lines only": _message(
        "From: alice@crepes.fr", "Subject: headers only", "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=b", "", "--b",
        "Content-Type: message/rfc822", "", "From: x@crepes.fr", "Subject: s", "--b--", ""),
    "enclosed message with an empty body": _message(
        "From: alice@crepes.fr", "Subject: empty body", "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=b", "", "--b",
        "Content-Type: message/rfc822", "", "From: x@crepes.fr", "", "--b--", ""),
    "enclosed multipart ending at the boundary": _message(
        "From: alice@crepes.fr", "Subject: enclosed multipart", "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=b", "", "--b",
        "Content-Type: message/rfc822", "", "From: x@crepes.fr",
        "Content-Type: multipart/alternative; boundary=c", "", "--c", "", "t", "--c--",
        "--b--", ""),
    "message/rfc822 at the top, no final line break":
        b"From: alice@crepes.fr\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: x@crepes.fr\r\n\r\nbody",
    "digest of messages without a header of their own": _message(
        "From: list@crepes.fr", "Subject: digest", "MIME-Version: 1.0",
        "Content-Type: multipart/digest; boundary=d", "", "--d", "", "From: x@crepes.fr", "",
        "one", "--d", "", "From: z@crepes.fr", "", "two", "", "--d--", ""),
})
ITEMS = ("ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.SIZE", "BODY.PEEK[HEADER]",
         "BODY.PEEK[]", "BODY.PEEK[TEXT]", "BODY.PEEK[1]", "BODY.PEEK[2]", "BODY.PEEK[3]",
         "BODY.PEEK[1.MIME]", "BODY.PEEK[2.MIME]", "BODY.PEEK[1.1]", "BODY.PEEK[2.1]",
         "BODY.PEEK[2.2]", "BODY.PEEK[2.1.1]", "BODY.PEEK[1.HEADER]", "BODY.PEEK[1.TEXT]",
         "BODY.PEEK[2.HEADER]", "BODY.PEEK[2.TEXT]",
         "BODY.PEEK[HEADER.FIELDS (Subject from)]", "BODY.PEEK[HEADER.FIELDS (TO cc DATE)]",
         "BODY.PEEK[HEADER.FIELDS.NOT (Subject MIME-Version)]",
         "BODY.PEEK[2.HEADER.FIELDS (SUBJECT From)]", "BINARY.PEEK[1]", "BINARY.SIZE[1]",
         "BINARY.PEEK[1]<0.20>")
# Where mailpipe answers otherwise, on purpose or for now, and why.
ACCEPTED = {
    ("multipart without its boundary", "ENVELOPE"):
        "Dovecot fills addresses it cannot parse with MISSING_MAILBOX and SYNTAX_ERROR "
        "placeholders (one for a whole To: it gives up on); mailpipe gives what it can "
        "read of them, and skips empty list elements (RFC 5322 4.4, obs-addr-list)",
    ("alternative with an inline image", "BINARY.PEEK[1]"):
        "BINARY of a part that is itself a multipart: Dovecot decodes each part inside and "
        "rewrites its Content-Transfer-Encoding header to binary; mailpipe gives the "
        "multipart as stored (RFC 3516 decodes a part by its own transfer encoding, and a "
        "multipart's is 7bit)",
    ("alternative with an inline image", "BINARY.SIZE[1]"):
        "the size of that same answer",
    ("alternative with an inline image", "BINARY.PEEK[1]<0.20>"):
        "the start of that same answer (the same bytes, which Dovecot sends as a literal8)",
}
_BINARY_OF_A_MULTIPART = ACCEPTED[("alternative with an inline image", "BINARY.PEEK[1]")]
for _name in ("calendar invitation", "Outlook mixed, related and alternative"):
    ACCEPTED.update({(_name, item): _BINARY_OF_A_MULTIPART
                     for item in ("BINARY.PEEK[1]", "BINARY.SIZE[1]", "BINARY.PEEK[1]<0.20>")})
for _name in ("S/MIME enveloped", "parameters in other cases and comments"):
    ACCEPTED.update({(_name, item): (
        "Dovecot answers BINARY of any decoded part as a literal8 (~{n}); mailpipe only "
        "when the data holds a NUL (edge/imap/condstore/fetch.py: clients such as Python's "
        "imaplib do not read literal8, and RFC 3516 4.3 allows a literal without NUL)")
        for item in ("BINARY.PEEK[1]", "BINARY.PEEK[1]<0.20>")})
ACCEPTED.update({("broken encodings", item): (
    "Dovecot refuses BINARY of a part it cannot decode (NO [PARSE], NO [UNKNOWN-CTE]); "
    "mailpipe decodes leniently, as readers do (structure/sections.py's decoded_body)")
    for item in ("BINARY.PEEK[1]", "BINARY.SIZE[1]", "BINARY.PEEK[1]<0.20>")})


@pytest.fixture(scope="module")
def dovecot() -> Iterator[int]:
    with private_dovecot() as reference:
        yield reference.imap_port


def _answers(client: imaplib.IMAP4, appended: Callable[[], None] = lambda: None
             ) -> dict[tuple[str, str], bytes]:
    for raw in CORPUS.values():
        assert client.append("INBOX", None, None, raw)[0] == "OK"
    appended()
    client.select("INBOX")
    answers = {}
    for number, name in enumerate(CORPUS, start=1):
        for item in ITEMS:
            client.untagged_responses.clear()  # what an answer with NO left behind
            status, data = client.fetch(str(number), f"({item})")
            answers[(name, item)] = status.encode() + b" " + b"".join(
                part if isinstance(part, bytes) else b"".join(part) for part in data
                if part is not None)
    return answers


@pytest.fixture(scope="module")
def dovecots_answers(dovecot: int) -> dict[tuple[str, str], bytes]:
    reference = imaplib.IMAP4("127.0.0.1", dovecot)
    reference.login(f"differential{os.getpid()}", PASSWORD)
    return _answers(reference)


@pytest.mark.parametrize("views", VIEW_STATES)
def test_fetch_answers_are_dovecots_byte_for_byte(
        dovecots_answers: dict[tuple[str, str], bytes], views: str) -> None:
    """Whatever the messages' stored IMAP views: kept when APPENDed, none (mail filed
    before views existed) or of an older format (both made again at the first FETCH)."""
    expected = dovecots_answers
    with running_imap() as imap:
        answered = _answers(imap.logged_in(), lambda: as_filed_before(imap, views))
    differing = {key for key in expected if expected[key] != answered[key]}
    assert differing == set(ACCEPTED), {
        key: (expected[key][:300], answered[key][:300]) for key in differing ^ set(ACCEPTED)}


def _nested(kind: str, depth: int, size: int) -> bytes:
    """A message nested `depth` deep around a text part that fills it to `size` bytes:
    multiparts, messages (message/rfc822), or the two in turn."""
    if kind == "multipart":
        head = b"".join(b"Content-Type: multipart/mixed; boundary=n%d_\r\n\r\n--n%d_\r\n"
                        % (level, level) for level in range(depth))
        tail = b"".join(b"\r\n--n%d_--\r\n" % level for level in reversed(range(depth)))
    elif kind == "message":
        head = b"Subject: level\r\nContent-Type: message/rfc822\r\n\r\n" * depth
        tail = b""
    else:
        head = b"".join(b"Content-Type: multipart/mixed; boundary=a%d_\r\n\r\n--a%d_\r\n"
                        b"Content-Type: message/rfc822\r\n\r\nSubject: level %d\r\n"
                        % (level, level, level) for level in range(depth // 2))
        tail = b"".join(b"\r\n--a%d_\r\n\r\nnext\r\n--a%d_--\r\n" % (level, level)
                        for level in reversed(range(depth // 2)))
    head = b"From: outside@sender.example\r\nSubject: nested\r\n" + head + b"\r\n"
    line = b"x" * 76 + b"\r\n"
    return head + line * ((size - len(head) - len(tail)) // len(line)) + tail


HOSTILE_NESTING = {kind: _nested(kind, 50, 4 * 1024 * 1024)
                   for kind in ("multipart", "message", "both in turn")}


def _noops_while(work: Callable[[], T], client: imaplib.IMAP4) -> tuple[T, list[float]]:
    """`work()` in a thread, and the time each NOOP on `client` took meanwhile."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(work)
        waits = []
        while not running.done():
            started = time.monotonic()
            assert client.noop()[0] == "OK"
            waits.append(time.monotonic() - started)
            time.sleep(0.02)
        return running.result(), waits


def test_hostile_nesting_is_answered_as_dovecot_answers_while_other_sessions_go_on(
        dovecot: int) -> None:
    """GIVEN 4 MiB messages nested 50 deep (multiparts, messages, both in turn) from an
    outside sender WHEN a client FETCHes their BODYSTRUCTURE and BODY[1...1] THEN the
    answers are Dovecot's, the session goes on, and another connection's NOOPs are
    answered meanwhile (the structure is built off the event loop, in linear time)."""
    def fetched(client: imaplib.IMAP4) -> list[object]:
        # One item at a time: servers may order the items of one answer differently.
        return [client.fetch("1:*", item) for item in (
            "BODYSTRUCTURE", "BODY", "BODY.PEEK[1.1.1.1.1]", "BODY.PEEK[1.1.1.1.MIME]",
            "RFC822.SIZE")]

    reference = imaplib.IMAP4("127.0.0.1", dovecot)
    reference.login(f"nesting{os.getpid()}", PASSWORD)
    for raw in HOSTILE_NESTING.values():
        assert reference.append("INBOX", None, None, raw)[0] == "OK"
    reference.select("INBOX")
    expected = fetched(reference)
    with running_imap() as imap:
        client, other = imap.logged_in(), imap.logged_in("carol@hamburger.edu")
        for raw in HOSTILE_NESTING.values():
            assert client.append("INBOX", None, None, raw)[0] == "OK"
        client.select("INBOX")
        answered, waits = _noops_while(lambda: fetched(client), other)
        assert answered == expected
        assert client.noop()[0] == "OK"
    assert waits and max(waits) < 2.0, waits


HOSTILE_FROM = [b"(" * 3000, b"(" * 3000 + b")" * 3000 + b" a@b", b"<" * 3000,
                b'"' + b"\\" * 5001, b"Group:" * 1000 + b"a@b;" * 1000, b"a@b, " * 5000,
                b"(a " * 3000 + b"b@c", b"\\(" * 3000]


def test_a_hostile_from_never_ends_the_session() -> None:
    """GIVEN messages whose From: is 3,000 "(" (which made getaddresses recurse and the
    connection drop on every retry) or another hostile address list WHEN a client FETCHes
    ENVELOPE of them all THEN each is answered and the session goes on."""
    with running_imap() as imap:
        client = imap.logged_in()
        for value in HOSTILE_FROM:
            raw = b"From: " + value + b"\r\nTo: " + value + b"\r\nSubject: x\r\n\r\nbody\r\n"
            assert client.append("INBOX", None, None, raw)[0] == "OK"
        client.select("INBOX")
        status, data = client.fetch("1:*", "(ENVELOPE BODYSTRUCTURE)")
        assert status == "OK"
        answered = [item for item in data if isinstance(item, tuple) or item != b")"]
        assert len([item for item in answered
                    if b"ENVELOPE" in (item[0] if isinstance(item, tuple) else item)]) \
            == len(HOSTILE_FROM)
        assert client.noop()[0] == "OK"
