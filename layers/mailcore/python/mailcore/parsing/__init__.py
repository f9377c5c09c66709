"""Parsing a message for display within bounds, whatever its content: bounded.py reads a
message (summary, content, attachment) within the limits of limits.py, with clock.py's
wall-clock backstop, lean.py's parse that leaves large bodies in the raw bytes, and
header_lines.py's summary for a message beyond the bounds.

It sits beside domain/, not in it: the wall-clock limit is an operating-system signal with
process-wide state (one real-time timer, the main thread only), and what the domain reads
(mailcore/domain/message.py) is given the parse, whatever made it."""
