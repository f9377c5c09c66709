"""The IMAP edge's RSS and time for BODYSTRUCTURE of a large message nested deep, beside a
flat message of the same size in the same run.

    python bench/imap_structure.py [--mib 20] [--depth 50]

Each case runs in a fresh process: the IMAP server (tests/imap_support.py, in-memory
storage) on its own event loop thread, the message filed straight through the mailbox
port (so an APPEND literal is not what is measured), then the peak RSS reset
(/proc/self/clear_refs) and one client's `FETCH 1 (BODYSTRUCTURE)` timed while a second
connection sends a NOOP every 10 ms. Printed per case: the time to the answer, the peak
RSS over the RSS before the FETCH (VmHWM - VmRSS), and the longest NOOP wait meanwhile
(how long the event loop, which also serves SMTP, was held).

Cases: a flat message (one text part: the baseline), multiparts nested `--depth` deep,
message/rfc822 nested `--depth` deep, the two in turn, and 99 levels of 70-character
boundaries with 440 multiparts opened and closed inside the innermost (a cost per level
opened times the levels open would show there); each one text part filling it to `--mib`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = ("flat", "multipart", "message", "both in turn", "wide and deep")


def nested(kind: str, depth: int, size: int) -> bytes:
    if kind == "multipart":
        head = b"".join(b"Content-Type: multipart/mixed; boundary=n%d_\r\n\r\n--n%d_\r\n"
                        % (level, level) for level in range(depth))
        tail = b"".join(b"\r\n--n%d_--\r\n" % level for level in reversed(range(depth)))
    elif kind == "message":
        head = b"Subject: level\r\nContent-Type: message/rfc822\r\n\r\n" * depth
        tail = b""
    elif kind == "both in turn":
        head = b"".join(b"Content-Type: multipart/mixed; boundary=a%d_\r\n\r\n--a%d_\r\n"
                        b"Content-Type: message/rfc822\r\n\r\nSubject: level %d\r\n"
                        % (level, level, level) for level in range(depth // 2))
        tail = b"".join(b"\r\n--a%d_\r\n\r\nnext\r\n--a%d_--\r\n" % (level, level)
                        for level in reversed(range(depth // 2)))
    elif kind == "wide and deep":
        # 99 levels, each boundary 70 characters, then 440 multiparts of one part each
        # inside the innermost: the most boundaries open while the most parts open.
        def boundary(number: int) -> bytes:
            return b"%06d" % number + b"=" * 64

        head = b"".join(b"Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n"
                        % (boundary(level), boundary(level)) for level in range(99))
        head += b"".join(b"Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n"
                         b"\r\nx\r\n--%s--\r\n--%s\r\n" % (
                             boundary(1000 + part), boundary(1000 + part),
                             boundary(1000 + part), boundary(98)) for part in range(440))
        tail = b"".join(b"\r\n--%s--\r\n" % boundary(level) for level in reversed(range(99)))
    else:
        head, tail = b"", b""
    head = b"From: outside@sender.example\r\nSubject: nested\r\n" + head + b"\r\n"
    line = b"x" * 76 + b"\r\n"
    return head + line * ((size - len(head) - len(tail)) // len(line)) + tail


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def measure(kind: str, mib: int, depth: int) -> dict[str, float]:
    from mailcore.domain.mailbox import INBOX
    from mailcore.services.appending import append_message
    from tests.imap_support import running_imap

    raw = nested(kind, depth, mib * 1024 * 1024)
    with running_imap() as imap:
        storage = imap.storage
        append_message("bob@hamburger.edu", INBOX, raw, frozenset(), datetime.now(UTC),
                       storage.store, storage.references, storage.mailboxes, storage.views)
        client, other = imap.logged_in(), imap.logged_in("carol@hamburger.edu")
        client.select("INBOX")
        assert client.fetch("1", "(FLAGS)")[0] == "OK"
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        before = _status_kib("VmRSS")
        answered: list[tuple[str, list[object]]] = []
        started = time.monotonic()
        fetching = threading.Thread(target=lambda: answered.append(
            client.fetch("1", "(BODYSTRUCTURE)")))
        fetching.start()
        longest = 0.0
        while fetching.is_alive():
            sent = time.monotonic()
            assert other.noop()[0] == "OK"
            longest = max(longest, time.monotonic() - sent)
            time.sleep(0.01)
        fetching.join()
        elapsed = time.monotonic() - started
        assert answered and answered[0][0] == "OK"
        peak = _status_kib("VmHWM")
        for session in (client, other):
            session.logout()
    return {"seconds": elapsed, "peak_mib": (peak - before) / 1024,
            "longest_noop": longest, "size_mib": len(raw) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=20)
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.case:
        print(json.dumps(measure(arguments.case, arguments.mib, arguments.depth)))
        return
    print(f"BODYSTRUCTURE of a {arguments.mib} MiB message, nested {arguments.depth} deep, "
          f"beside a flat one (each case in a fresh process)")
    print(f"{'case':<14}{'size MiB':>10}{'time s':>9}{'RSS peak +MiB':>15}"
          f"{'longest NOOP s':>16}")
    for case in CASES:
        result = subprocess.run(
            [sys.executable, __file__, "--case", case, "--mib", str(arguments.mib),
             "--depth", str(arguments.depth)], cwd=ROOT, capture_output=True, text=True,
            check=True)
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{case:<14}{figures['size_mib']:>10.1f}{figures['seconds']:>9.2f}"
              f"{figures['peak_mib']:>15.1f}{figures['longest_noop']:>16.3f}")


if __name__ == "__main__":
    main()
