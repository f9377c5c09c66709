"""Runs one edge process (`python -m mailpipe.local.edge_child smtp|imap PID`, the role
of `python -m edge`) for `mailpipe up`, ended with it however `mailpipe up` ends: killed
with SIGKILL, it cannot stop its children, and an orphaned edge would keep the stack's
ports. In the test mode
(faults.py) the SMTP edge gets a writer that fails on demand."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from edge.__main__ import ROLES
from edge.__main__ import main as run_edge
from mailpipe.local import faults

_PR_SET_PDEATHSIG = 1  # prctl(2), Linux


def _end_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return  # not Linux: `mailpipe up` still stops its children when it stops normally
    if os.getppid() != parent:  # the parent ended before the signal was asked for
        sys.exit(0)


def main() -> None:
    role, parent = sys.argv[1], int(sys.argv[2])
    if role not in ROLES:
        raise SystemExit(f"edge_child: not an edge role: {role}")
    _end_with_parent(parent)
    switch = faults.storage_switch(os.environ) if role == "smtp" else None
    if switch is not None:  # the test mode: the edge's own writer, failing on demand
        from edge.smtp.__main__ import serve_smtp
        from mailcore.wiring import edge_writer
        serve_smtp(faults.FaultInjectingWriter(edge_writer(), switch))
        return
    # Called, not run by runpy: this module imported it already (ROLES), and runpy would
    # execute it a second time, warning so in the stack's log.
    run_edge([role])


if __name__ == "__main__":
    main()
