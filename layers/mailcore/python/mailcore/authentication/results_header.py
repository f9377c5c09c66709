"""The Authentication-Results header field (RFC 8601) the edge prepends to each message it
receives on the MX port, and the removal of any incoming one that claims to be ours
(§5: a field with our authserv-id that we did not write must not be believed).

What we write, one result per line (authres writes each result; we fold; each
continuation line starts with a tab):

    Authentication-Results: mx.hamburger.edu;
        spf=pass smtp.mailfrom=crepes.fr;
        spf=pass smtp.helo=mail.crepes.fr;
        dkim=pass header.d=crepes.fr header.s=mp20261207r header.a=rsa-sha256
         header.b=abcd1234;
        dmarc=pass header.from=crepes.fr policy.dmarc=reject

A result that is not a pass carries reason="..." (RFC 8601 §2.3); dkim=none when the message
has no signature; policy.dmarc is the applicable published policy, when there is one.
"""

from __future__ import annotations

import re

from mailcore.domain.verdict import Result, Verdict

FIELD_NAME = "Authentication-Results"
LINE_LIMIT = 78  # RFC 5322 §2.1.1: lines SHOULD be at most 78 characters
_REASON_LIMIT = 100


def results_header(authserv_id: str, verdict: Verdict) -> bytes:
    """The whole field, folded, ending in CRLF."""
    import authres
    import authres.core
    import authres.dkim_b
    import authres.dmarc

    def reason(result: Result, text: str) -> str | None:
        if result is Result.PASS or not text:
            return None
        return re.sub(r"[^\x20-\x7e]", "?", text)[:_REASON_LIMIT]

    results: list[object] = []
    spf = verdict.spf
    results.append(authres.SPFAuthenticationResult(
        result=str(spf.result), reason=reason(spf.result, spf.reason),
        **({"smtp_helo": spf.domain} if spf.scope == "helo" and spf.domain
           else {"smtp_mailfrom": spf.domain} if spf.domain else {})))
    # With an empty MAIL FROM the MAIL FROM check is the HELO one (RFC 7208 §2.4): once.
    if verdict.helo_spf is not None and verdict.helo_spf.domain and not (
            spf.scope == "helo" and spf.domain == verdict.helo_spf.domain):
        helo = verdict.helo_spf
        results.append(authres.SPFAuthenticationResult(
            result=str(helo.result), reason=reason(helo.result, helo.reason),
            smtp_helo=helo.domain))
    for signature in verdict.dkim:
        dkim = authres.dkim_b.DKIMAuthenticationResult(
            result=str(signature.result), reason=reason(signature.result, signature.reason),
            header_d=signature.domain or None, header_b=signature.header_b or None)
        # authres's DKIM result with header.b has no header.s / header.a arguments.
        for name, value in (("s", signature.selector), ("a", signature.algorithm)):
            if value:
                dkim.properties.insert(-1 if signature.header_b else len(dkim.properties),
                                       authres.core.AuthenticationResultProperty(
                                           "header", name, value))
        results.append(dkim)
    if not verdict.dkim:
        results.append(authres.DKIMAuthenticationResult(result="none"))
    if verdict.dmarc is not None:
        dmarc = verdict.dmarc
        text = dmarc.reason
        if verdict.claims_hosted_domain:
            text = f"From claims a hosted domain; {text}" if text else "claims a hosted domain"
        results.append(authres.dmarc.DMARCAuthenticationResult(
            result=str(dmarc.result), reason=reason(dmarc.result, text),
            header_from=dmarc.from_domain or None, policy=dmarc.policy or None))
    lines = [f"{FIELD_NAME}: {_sanitised_id(authserv_id)};"]
    for position, result in enumerate(results):
        # Every value in a clause comes from the sender (HELO, MAIL FROM, d=, s=, the From
        # domain), and authres quotes specials but passes CR, LF and other controls as
        # they are: a bare CR in a HELO would start a header field of the sender's above
        # everything else. Only printable ASCII is written.
        clause = _printable(str(result)) + (";" if position < len(results) - 1 else "")
        lines.extend(_folded(clause))
    return ("\r\n".join(lines) + "\r\n").encode("ascii", "replace")


def _printable(text: str) -> str:
    return re.sub(r"[^\x20-\x7e]", "?", text)


def _sanitised_id(authserv_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "", authserv_id) or "localhost"


def _folded(clause: str) -> list[str]:
    """The clause as continuation lines, broken at spaces outside quotes and comments."""
    words, current, quoted, depth = [], "", False, 0
    for position, char in enumerate(clause):
        escaped = position > 0 and clause[position - 1] == "\\"
        if char == '"' and not escaped and depth == 0:
            quoted = not quoted
        elif char == "(" and not quoted and not escaped:
            depth += 1
        elif char == ")" and not quoted and not escaped and depth:
            depth -= 1
        if char == " " and not quoted and depth == 0:
            words.append(current)
            current = ""
        else:
            current += char
    words.append(current)
    lines = ["\t" + words[0]]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) > LINE_LIMIT:
            lines.append("\t " + word)
        else:
            lines[-1] += " " + word
    return lines


def remove_our_results(raw: bytes, authserv_id: str) -> bytes:
    """`raw` without the Authentication-Results fields of its header section whose
    authserv-id is ours (compared without regard to case, after any comments and folding
    whitespace); every other byte is kept as it was."""
    ours = authserv_id.strip().lower()
    kept: list[bytes] = []
    fields = _header_fields(raw)
    end = sum(len(b"".join(field)) for field in fields)
    for field in fields:
        if not _claims(b"".join(field), ours):
            kept.extend(field)
    return b"".join(kept) + raw[end:]


def _header_fields(raw: bytes) -> list[list[bytes]]:
    """The header section's fields, each as its lines with their line endings (continuation
    lines start with a space or tab); stops at the empty line before the body."""
    fields: list[list[bytes]] = []
    for line in raw.splitlines(keepends=True):
        if line in (b"\r\n", b"\n", b"\r"):
            break
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    return fields


_NAME = re.compile(rb"^authentication-results[ \t]*:", re.IGNORECASE)


def _claims(field: bytes, ours: str) -> bool:
    match = _NAME.match(field)
    if match is None:
        return False
    value = re.sub(rb"\r\n|\r|\n", b"", field[match.end():]).decode("utf-8", "replace")
    return _authserv_id(value) == ours


def _authserv_id(value: str) -> str:
    """RFC 8601 §2.2: the first value (a token or a quoted-string) after optional CFWS."""
    position, depth = 0, 0
    while position < len(value):  # comments nest (RFC 5322 §3.2.2)
        char = value[position]
        if depth:
            depth += {"(": 1, ")": -1}.get(char, 0)
            position += 2 if char == "\\" else 1
        elif char == "(":
            depth, position = 1, position + 1
        elif char in " \t":
            position += 1
        else:
            break
    rest = value[position:]
    if rest.startswith('"'):
        quoted = re.match(r'"((?:[^"\\]|\\.)*)"', rest)
        return re.sub(r"\\(.)", r"\1", quoted[1]).strip().lower() if quoted else ""
    token = re.match(r"[^\s;()\"]+", rest)
    return token[0].lower() if token else ""
