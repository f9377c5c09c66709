"""A private Postfix (Debian's) on 127.0.0.1 that relays everything to a given host:port.

It runs as root from its own configuration folder, without chroot, and leaves the
system's Postfix alone.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
tlsmgr    unix - - n 1000? 1 tlsmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
local     unix - n n - - local
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def postfix_available() -> bool:
    return shutil.which("postfix") is not None


@contextmanager
def postfix_relay(listen_port: int, relay_port: int) -> Iterator[Path]:
    """Start Postfix listening on 127.0.0.1:listen_port, relaying to 127.0.0.1:relay_port.
    Yields its log file."""
    # Not pytest's tmp_path: Postfix's daemons run as the postfix user and must be able
    # to reach their queue, and pytest's folders are private to root.
    folder = Path(tempfile.mkdtemp(prefix="mailpipe-postfix-"))
    folder.chmod(0o755)
    try:
        with _running(folder, listen_port, relay_port) as log_file:
            yield log_file
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _running(folder: Path, listen_port: int, relay_port: int) -> Iterator[Path]:
    config = folder / "etc"
    log_dir = folder / "log"
    for path in (config, log_dir, folder / "queue", folder / "data"):
        path.mkdir(parents=True, exist_ok=True)
    shutil.chown(folder / "data", user="postfix")
    log_file = log_dir / "postfix.log"
    (config / "master.cf").write_text(MASTER_CF.format(listen=f"127.0.0.1:{listen_port}"))
    (config / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {folder / 'queue'}
data_directory = {folder / 'data'}
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = relay.crepes.test
mydomain = crepes.test
myorigin = crepes.test
mydestination =
relayhost = [127.0.0.1]:{relay_port}
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
local_transport = error:local delivery is disabled
smtp_tls_security_level = may
smtp_tls_loglevel = 1
maillog_file = {log_file}
maillog_file_prefixes = /var, /dev/stdout, {log_dir}
queue_run_delay = 1s
minimal_backoff_time = 1s
maximum_backoff_time = 2s
""")
    # `start` runs postfix-script, which makes the queue's subfolders with their owners.
    subprocess.run(["postfix", "-c", str(config), "start"], check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if subprocess.run(["postfix", "-c", str(config), "status"],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        yield log_file
    finally:
        subprocess.run(["postfix", "-c", str(config), "stop"], capture_output=True)
