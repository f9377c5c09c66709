"""The edge container's one entry point: `python -m edge smtp` (MX and submission, health
8080) or `python -m edge imap` (IMAP, health 8081). Two containers of one ECS task run the
same image with each role, so each role is its own process, memory limit and health check:
nothing an IMAP client does reaches the MX's event loop."""

from __future__ import annotations

import sys

ROLES = ("smtp", "imap")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in ROLES:
        print(f"usage: python -m edge {{{'|'.join(ROLES)}}}", file=sys.stderr)
        raise SystemExit(2)
    if args[0] == "smtp":
        from edge.smtp.__main__ import main as run
    else:
        from edge.imap.__main__ import main as run
    run()


if __name__ == "__main__":
    main()
