"""Authenticated mail: SPF, DKIM and DMARC verdicts on what arrives, DKIM signatures on what
our users send (issue 28). Pure logic over injected DNS lookups; the edge runs it."""
