"""mailpipe: command line and local runtime."""
